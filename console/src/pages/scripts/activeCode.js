// The active version of a script and its code (two reads: the versions, then the active one).
import { enc, get } from '../../api.js';

/** {version, code} of the active version, or null when the script has none. */
export async function activeCode(name) {
  let versions;
  try {
    versions = await get(`/scripts/${enc(name)}/versions`);
  } catch (exc) {
    if (exc.status === 404) return null;
    throw exc;
  }
  const active = versions.find((v) => v.active);
  if (!active) return null;
  const full = await get(`/scripts/${enc(name)}/versions/${active.version}`);
  return { version: active.version, code: full.code };
}
