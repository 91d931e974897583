// Previous / next over a server-paginated list (offset, limit, total).
export function Pager({ offset, limit, total, onPage }) {
  const last = Math.min(offset + limit, total);
  return (
    <div class="pager">
      <span class="muted">
        {total === 0 ? 'none' : `${offset + 1}–${last} of ${total.toLocaleString()}`}
      </span>
      <button type="button" class="small" disabled={offset === 0} onClick={() => onPage(Math.max(0, offset - limit))}>
        ‹ Newer
      </button>
      <button type="button" class="small" disabled={last >= total} onClick={() => onPage(offset + limit)}>
        Older ›
      </button>
    </div>
  );
}
