// The live feed (GET /api/v1/events, Server-Sent Events): one snapshot of the cluster a second,
// computed once per server for every open page. A browser opens ONE stream however many tabs
// show live data: the tab holding the Web Lock `fnhub-feed` reads it and passes each snapshot
// to the other tabs on a BroadcastChannel; when that tab closes or stops needing the feed, the
// lock (and the stream) moves to another tab that wants it. The reading tab also says it is
// alive every second on the channel: a tab that is frozen (not closed) keeps its lock, so the
// waiting tabs take the lock from it (`steal`) after a few silent seconds; if it wakes up it
// finds its lock gone, closes its stream and waits like the others. Without those APIs (an
// http:// page on another host is no secure context) each tab opens its own stream.
import { API, get } from './api.js';
import { store, useStore } from './store.js';
import { useEffect } from 'preact/hooks';

const CHANNEL = 'fnhub-feed';
const LOCK = 'fnhub-feed';
const RETRY_MS = 3000;
const BEAT_MS = 1000;
/** a reading tab silent this long (plus up to a second, so waiting tabs do not all steal at once) is taken over */
const SILENT_MS = 4000;

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
  let waiting = null;
  let stopped = false;
  let heard = Date.now(); // the reading tab's last word (a snapshot or a beat)
  const patience = SILENT_MS + Math.random() * 1000;
  channel.onmessage = ({ data }) => {
    heard = Date.now();
    if (data.type === 'snapshot') accept(data.snapshot);
    else if (data.type === 'hello' && closeStream && live.get().snapshot) {
      channel.postMessage({ type: 'snapshot', snapshot: live.get().snapshot });
    }
  };
  const lead = () => {
    closeStream = readStream((snapshot) => {
      accept(snapshot);
      channel.postMessage({ type: 'snapshot', snapshot });
    });
    const beat = setInterval(() => channel.postMessage({ type: 'beat' }), BEAT_MS);
    return new Promise((resolve) => {
      release = () => {
        clearInterval(beat);
        closeStream?.();
        closeStream = null;
        resolve();
      };
    });
  };
  /** Wait for the lock (or take it with `steal`); when it is taken from this tab, wait again. */
  const join = (steal) => {
    const ctl = new AbortController();
    waiting = ctl;
    let held = false;
    const options = steal ? { steal: true } : { signal: ctl.signal };
    const hold = () => {
      held = true;
      return lead();
    };
    navigator.locks.request(LOCK, options, hold).then(
      () => {},
      () => {
        if (!held) return; // aborted while waiting: this tab stopped or steals instead
        release?.(); // stolen: another tab reads the stream now
        release = null;
        if (!stopped) join(false);
      },
    );
  };
  const watch = setInterval(() => {
    if (!stopped && !closeStream && Date.now() - heard > patience) {
      heard = Date.now();
      waiting.abort(); // leave the queue, then take the lock from the silent tab
      join(true);
    }
  }, BEAT_MS);
  channel.postMessage({ type: 'hello' }); // the reading tab answers with its newest snapshot
  join(false);
  return () => {
    stopped = true;
    clearInterval(watch);
    waiting.abort();
    release?.();
    release = null;
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
