// Loading data and running actions from components, with their busy and error states.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { get, query } from './api.js';
import { toast } from './components/Toasts.jsx';

/**
 * GET `path` (again whenever it changes, or on reload()). With `every` (ms), refresh while
 * the page is visible. A null path loads nothing.
 */
export function useApi(path, { every = 0 } = {}) {
  const [state, setState] = useState({ data: undefined, error: null, loading: !!path });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    if (!path) {
      setState({ data: undefined, error: null, loading: false });
      return undefined;
    }
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    get(path, { signal: ctl.signal }).then(
      (data) => setState({ data, error: null, loading: false }),
      (error) => error.name !== 'AbortError' && setState((s) => ({ ...s, error, loading: false })),
    );
    return () => ctl.abort();
  }, [path, tick]);
  useInterval(reload, every);
  return { ...state, reload, setData: (data) => setState((s) => ({ ...s, data })) };
}

/** Call `fn` every `ms` while the page is visible (0: never). */
export function useInterval(fn, ms) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!ms) return undefined;
    const id = setInterval(() => document.visibilityState === 'visible' && saved.current(), ms);
    return () => clearInterval(id);
  }, [ms]);
}

/**
 * Wrap an async action: `busy` while it runs, its error kept (and shown as a toast unless the
 * caller shows it), `done` message toasted on success.
 */
export function useAction(fn, { done, quiet = false } = {}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = useCallback(
    async (...args) => {
      setBusy(true);
      setError(null);
      try {
        const out = await fn(...args);
        if (done) toast(typeof done === 'function' ? done(out) : done);
        return out;
      } catch (exc) {
        setError(exc);
        if (!quiet) toast(exc.message, 'error');
        return undefined;
      } finally {
        setBusy(false);
      }
    },
    [fn, done, quiet],
  );
  return { run, busy, error, setError };
}

/**
 * Keyset pages of `path` with `params` (a new filter starts at the first page): the page's
 * data, and `page`, `first`, `newer`, `older` for a Pager. The total counted with the first
 * page stays shown on the pages after it.
 */
export function useCursorPages(path, params, { limit = 50, every = 0 } = {}) {
  const key = path + query(params);
  const [state, setState] = useState({ key, cursors: [null], total: null });
  const current = state.key === key ? state : { key, cursors: [null], total: null };
  const cursor = current.cursors[current.cursors.length - 1];
  const list = useApi(path ? `${path}${query({ ...params, cursor, limit })}` : null, { every });
  const data = list.data;
  const total = data && data.total !== undefined && data.total !== null ? data.total : current.total;
  const move = (cursors) => setState({ key, cursors, total });
  return {
    ...list,
    total,
    page: current.cursors.length,
    first: () => move([null]),
    newer: current.cursors.length > 1 ? () => move(current.cursors.slice(0, -1)) : null,
    older: data?.next_cursor && !list.loading ? () => move([...current.cursors, data.next_cursor]) : null,
  };
}

/**
 * Pages of a plain list API that takes `limit` and a keyset parameter (`after` / `before` the
 * last item of a page): a full page means there may be more. Same shape as useCursorPages.
 */
export function useListPages(path, { limit = 100, param = 'after', keyOf = (x) => x.id } = {}) {
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const list = useApi(`${path}${path.includes('?') ? '&' : '?'}${query({ limit, [param]: cursor }).slice(1)}`);
  const items = list.data;
  return {
    ...list,
    page: cursors.length,
    first: () => setCursors([null]),
    newer: cursors.length > 1 ? () => setCursors(cursors.slice(0, -1)) : null,
    older: items && items.length === limit && !list.loading ? () => setCursors([...cursors, keyOf(items[items.length - 1])]) : null,
  };
}

/**
 * A named listing (connectors, subscriptions, endpoints, cron jobs, keys, users) a page at a
 * time, with a name filter typed into a box: `items` of the page, `filter` / `setFilter`, and
 * the useCursorPages fields for a Pager.
 */
export function useNamedPages(path, { limit = 100, every = 0 } = {}) {
  const [filter, setFilter] = useState('');
  const [name, setName] = useState('');
  useEffect(() => {
    const id = setTimeout(() => setName(filter.trim()), 250);
    return () => clearTimeout(id);
  }, [filter]);
  const pages = useCursorPages(path, name ? { name } : {}, { limit, every });
  return { ...pages, items: pages.data?.items, filter, setFilter };
}
