// Short-lived messages after an action (saved, failed, ...), stacked in a corner.
import { store, useStore } from '../store.js';

const toasts = store([]);
let next = 1;

export function toast(message, kind = 'ok', ms = kind === 'error' ? 8000 : 5000) {
  const id = next++;
  toasts.set((list) => [...list, { id, message: String(message), kind }]);
  setTimeout(() => toasts.set((list) => list.filter((t) => t.id !== id)), ms);
}

export function Toasts() {
  const list = useStore(toasts);
  return (
    <div class="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`}>
          {t.message}
        </div>
      ))}
    </div>
  );
}
