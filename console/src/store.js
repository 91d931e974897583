// A value that components can watch: the few pieces of state shared across pages
// (signed-in user, toasts, live feed) without a state library.
import { useEffect, useState } from 'preact/hooks';

export function store(initial) {
  let value = initial;
  const watchers = new Set();
  return {
    get: () => value,
    set(next) {
      value = typeof next === 'function' ? next(value) : next;
      for (const w of watchers) w(value);
    },
    watch(fn) {
      watchers.add(fn);
      return () => watchers.delete(fn);
    },
  };
}

export function useStore(s) {
  const [value, setValue] = useState(s.get());
  useEffect(() => {
    setValue(s.get());
    return s.watch(setValue);
  }, [s]);
  return value;
}
