// Newer / older over a keyset-paginated list: the server hands out `next_cursor`, the pager
// keeps the cursors of the pages already seen to go back.
export function Pager({ pages, total, shown, label = 'tasks', names = ['« Newest', '‹ Newer', 'Older ›'] }) {
  const counted = total !== null && total !== undefined;
  return (
    <div class="pager">
      <span class="muted">
        page {pages.page}
        {counted ? ` · ${total.toLocaleString()} matching` : shown ? ` · ${shown} ${label}` : ''}
      </span>
      <button type="button" class="small" disabled={pages.page === 1} onClick={pages.first}>
        {names[0]}
      </button>
      <button type="button" class="small" disabled={!pages.newer} onClick={pages.newer}>
        {names[1]}
      </button>
      <button type="button" class="small" disabled={!pages.older} onClick={pages.older}>
        {names[2]}
      </button>
    </div>
  );
}

/** The name filter and the pager of a named listing (see useNamedPages). */
export function ListControls({ pages, label, noun }) {
  return (
    <div class="list-controls">
      <input type="search" name="name" aria-label="Filter" placeholder={`Filter: ${noun} name contains…`} value={pages.filter} onInput={(e) => pages.setFilter(e.currentTarget.value)} />
      <Pager pages={pages} total={pages.total} shown={pages.items?.length} label={label} names={['« First', '‹ Previous', 'Next ›']} />
    </div>
  );
}
