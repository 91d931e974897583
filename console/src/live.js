// The live feed (GET /api/v1/events, Server-Sent Events): one snapshot of the cluster a second,
// computed once per server for every open page. A browser opens ONE stream however many tabs
// show live data: the tab holding the Web Lock `fnhub-feed` reads it and passes each snapshot
// to the other tabs on a BroadcastChannel; when that tab closes or stops needing the feed, the
// lock (and the stream) moves to another tab that wants it. Without those APIs (an http://
// page on another host is no secure context) each tab opens its own stream.
import { API, get } from './api.js';
import { store, useStore } from './store.js';
import { useEffect } from 'preact/hooks';

const CHANNEL = 'fnhub-feed';
const LOCK = 'fnhub-feed';
const RETRY_MS = 3000;

/** {snapshot: the newest snapshot or null, at: when it came (ms), error: text or null} */
export const live = store({ snapshot: null, at: 0, error: null });

let users = 0;
let stopFeed = null;

function accept(snapshot) {
  live.set({ snapshot, at: Date.now(), error: null });
}

/**
 * Read the stream while `isOpen()`; calls `onSnapshot` for each snapshot. EventSource
 * reconnects by itself after a dropped connection, but not after a refusal (signed out, a
 * server error): then the session is checked (a 401 signs the page out) and it tries again.
 */
function readStream(onSnapshot) {
  let source = null;
  let timer = null;
  let closed = false;
  const open = () => {
    source = new EventSource(`${API}/events`);
    source.addEventListener('snapshot', (e) => onSnapshot(JSON.parse(e.data)));
    source.onerror = () => {
      if (closed || source.readyState !== EventSource.CLOSED) return; // it reconnects itself
      live.set((l) => ({ ...l, error: 'the live feed was refused; trying again' }));
      timer = setTimeout(() => {
        if (closed) return;
        get('/session').then(open, () => {});
      }, RETRY_MS);
    };
  };
  open();
  return () => {
    closed = true;
    clearTimeout(timer);
    source?.close();
  };
}

/** One stream shared by this browser's tabs (see the top of this file). */
function sharedFeed() {
  const channel = new BroadcastChannel(CHANNEL);
  let closeStream = null;
  let release = null;
  channel.onmessage = ({ data }) => {
    if (data.type === 'snapshot') accept(data.snapshot);
    else if (data.type === 'hello' && closeStream && live.get().snapshot) {
      channel.postMessage({ type: 'snapshot', snapshot: live.get().snapshot });
    }
  };
  channel.postMessage({ type: 'hello' }); // the reading tab answers with its newest snapshot
  const waiting = new AbortController();
  navigator.locks
    .request(LOCK, { signal: waiting.signal }, () => {
      closeStream = readStream((snapshot) => {
        accept(snapshot);
        channel.postMessage({ type: 'snapshot', snapshot });
      });
      return new Promise((resolve) => {
        release = resolve;
      });
    })
    .catch(() => {}); // aborted: this tab stopped before it got the lock
  return () => {
    waiting.abort();
    closeStream?.();
    closeStream = null;
    release?.();
    channel.close();
  };
}

function start() {
  const shared = typeof BroadcastChannel === 'function' && navigator.locks;
  return shared ? sharedFeed() : readStream(accept);
}

/** Follow the feed while the calling component is mounted; returns the live store's value. */
export function useLive() {
  useEffect(() => {
    users += 1;
    if (users === 1) stopFeed = start();
    return () => {
      users -= 1;
      if (users === 0) {
        stopFeed();
        stopFeed = null;
      }
    };
  }, []);
  return useStore(live);
}
