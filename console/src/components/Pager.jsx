// Newer / older over a keyset-paginated list: the server hands out `next_cursor`, the pager
// keeps the cursors of the pages already seen to go back.
export function Pager({ pages, total, shown, label = 'tasks' }) {
  const counted = total !== null && total !== undefined;
  return (
    <div class="pager">
      <span class="muted">
        page {pages.page}
        {counted ? ` · ${total.toLocaleString()} matching` : shown ? ` · ${shown} ${label}` : ''}
      </span>
      <button type="button" class="small" disabled={pages.page === 1} onClick={pages.first}>
        « Newest
      </button>
      <button type="button" class="small" disabled={!pages.newer} onClick={pages.newer}>
        ‹ Newer
      </button>
      <button type="button" class="small" disabled={!pages.older} onClick={pages.older}>
        Older ›
      </button>
    </div>
  );
}
