// Unpublished editor text per script, kept while the browser tab lives, so moving between
// tabs and pages does not lose an edit.
const KEY = 'fnhub.buffer.';

export function getBuffer(name) {
  return sessionStorage.getItem(KEY + name);
}

export function setBuffer(name, text) {
  try {
    sessionStorage.setItem(KEY + name, text);
  } catch {
    /* storage full: the edit stays in the open editor only */
  }
}

export function dropBuffer(name) {
  sessionStorage.removeItem(KEY + name);
}
