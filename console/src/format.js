// How times, durations and values read on screen.
const pad = (n) => String(n).padStart(2, '0');

/** Epoch seconds → "2024-05-01 13:04:05" in the browser's time zone. */
export function dateTime(epoch) {
  if (epoch === null || epoch === undefined) return '';
  const d = new Date(epoch * 1000);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** Epoch seconds → "5 s ago", "3 min ago", ... */
export function ago(epoch, now = Date.now() / 1000) {
  if (!epoch) return '';
  const s = Math.max(0, now - epoch);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** Milliseconds → "0.8 ms", "12 ms", "1.24 s", "2 min 3 s". */
export function duration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** Any value as indented JSON text (strings stay JSON strings, so types show). */
export function json(value) {
  if (value === undefined) return '';
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** epoch seconds ↔ the value of an <input type="datetime-local"> */
export function toLocalInput(epoch) {
  if (!epoch) return '';
  const d = new Date(epoch * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(text) {
  if (!text) return '';
  const t = new Date(text).getTime();
  return Number.isNaN(t) ? '' : Math.floor(t / 1000);
}
