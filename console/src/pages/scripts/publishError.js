// A refused publish as {message, line, column}: the API's fields when it sends them, else the
// position read from its message ("line 3, column 5" / "hello.py line 3").
const AT = /line (\d+)(?:, column (\d+))?/;

export function publishError(exc) {
  const info = exc.info || {};
  let { line, column } = info;
  const message = info.message || exc.message;
  if (!line) {
    const m = AT.exec(message);
    if (m) {
      line = Number(m[1]);
      column = m[2] ? Number(m[2]) : undefined;
    }
  }
  return { message, line, column, code: exc.code };
}
