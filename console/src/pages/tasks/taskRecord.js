// One task's full record, waiting for it when the task is still queued or running (records
// are written within about a second of a task's end; until then its live state is shown).
import { enc, get } from '../../api.js';

const FINAL = new Set(['success', 'failure', 'timeout', 'expired', 'dead', 'skipped']);
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Calls `onState({record})` once the record exists, `onState({live})` with the task's live
 * state while it has none yet; stops when `signal` aborts. Throws the API's error for an
 * unknown task.
 */
export async function followRecord(id, onState, signal) {
  for (let tries = 0; ; tries++) {
    try {
      const record = await get(`/tasks/${enc(id)}/record`, { signal });
      onState({ record });
      if (FINAL.has(record.status)) return;
      await pause(2000); // retrying: another attempt will land
      continue;
    } catch (exc) {
      if (exc.status !== 404) throw exc;
    }
    const live = await get(`/tasks/${enc(id)}${tries ? '?wait=20' : ''}`, { signal });
    onState({ live });
    if (FINAL.has(live.status)) await pause(700); // its record is on its way
  }
}
