// A refused publish as {message, line, column, endLine, endColumn}: the server's fields
// (1-based; `end_column` exclusive). Only a server that sends no `script` field has its
// position read from the message ("line 3, column 5").
const AT = /line (\d+)(?:, column (\d+))?/;

export function publishError(exc) {
  const info = exc.info || {};
  const message = info.message || exc.message;
  let { line, column } = info;
  if (!line && !info.script) {
    const m = AT.exec(message);
    if (m) {
      line = Number(m[1]);
      column = m[2] ? Number(m[2]) : undefined;
    }
  }
  return { message, line, column, endLine: info.end_line, endColumn: info.end_column, code: exc.code };
}
