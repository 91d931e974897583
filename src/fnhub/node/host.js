'use strict';
// fnhub's Node host: runs the JavaScript functions of one worker child, one task at a time, in a
// long-lived process (a process per task would cost ~40 ms of start-up each). Python drives it
// over two pipes with frames of a 4-byte big-endian length and UTF-8 JSON; stdout and stderr are
// not the protocol (user code writes there, and Node writes its fatal errors there).
//
//   node host.js serve|inspect '<config JSON>'
//
// Scripts are written to disk ("materialised") under the config's root, one folder per layout
// (a set of script versions that see each other), so Node's own resolver handles
// `require('./other')`, `import './other.js'` and npm packages. Only Node's built-in modules are
// used: the host must run on any Node >= 18 without an install step.

const fs = require('fs');
const path = require('path');
const net = require('net');
const vm = require('vm');
const Module = require('module');
const childProcess = require('child_process');
const { pathToFileURL } = require('url');

const MODE = process.argv[2];
const CONFIG = JSON.parse(process.argv[3]);
const ROOT = CONFIG.root;
const IN_FD = CONFIG.inFd;
const OUT_FD = CONFIG.outFd;
const RESULT_MAX = CONFIG.resultMax || 1000000;
const LOG_MAX = CONFIG.logMax || 64000;
const STRAY_MAX = 1000000; // output written between tasks, kept in the process's log file
const BYTES = '$fnhub_bytes';
const OPTIONS = Symbol.for('fnhub.options');
const SDK = Symbol.for('fnhub.sdk');
const CJS_PARAMS = ['exports', 'require', 'module', '__filename', '__dirname'];
const ESM_HINT =
  /Cannot use import statement|Unexpected token 'export'|import\.meta|await is only valid|Cannot use 'import\.meta'/;
const HOST_FILE = __filename;
const ROOT_PATTERN = new RegExp(
  '(?:file://)?' + ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '/L\\d+/',
  'g',
);

// --- wire ---------------------------------------------------------------------------------
//
// A task's answer is an array, not an object (one for every task: no key names to write and
// parse): [1, value, logs] when it returned, [0, error type, message, stack, logs, replace]
// when it failed (replace: an uncaught error, the process is to be replaced), [2] when its
// expiry passed before it started. Every other frame is an object with its kind in "t".

let out = Buffer.allocUnsafe(1 << 16); // reused for every frame: one write per frame

function writeAll(buffer, length) {
  let offset = 0;
  while (offset < length) {
    try {
      offset += fs.writeSync(OUT_FD, buffer, offset, length - offset);
    } catch (err) {
      if (err.code === 'EAGAIN') continue;
      closing = true; // Python went away (EPIPE): nothing left to answer
      process.exit(0);
    }
  }
}

function sendText(text) {
  if (text.length * 3 + 4 > out.length) {
    const size = Buffer.byteLength(text) + 4;
    if (size > out.length) out = Buffer.allocUnsafe(Math.max(size, out.length * 2));
  }
  const n = out.write(text, 4);
  out.writeUInt32BE(n, 0);
  writeAll(out, n + 4);
}

function bytesReplacer(key, value) {
  const original = this[key];
  if (original instanceof Uint8Array) {
    const b = Buffer.isBuffer(original)
      ? original
      : Buffer.from(original.buffer, original.byteOffset, original.byteLength);
    return { [BYTES]: b.toString('base64') };
  }
  return value;
}

function send(frame) {
  sendText(JSON.stringify(frame, bytesReplacer));
}

function reviveBytes(key, value) {
  if (value !== null && typeof value === 'object' && typeof value[BYTES] === 'string') {
    const keys = Object.keys(value);
    if (keys.length === 1) return Buffer.from(value[BYTES], 'base64');
  }
  return value;
}

// the chunks of a frame not complete yet, joined once it is (not at every chunk: a frame of
// megabytes arrives in 64 KB pieces); copies, since the input buffer is reused for every read
let pending = [];
let pendingSize = 0;
let pendingNeeds = 0;

/** `size` bytes arrived in `buffer` (the socket's one input buffer, overwritten by the next
 * read: what is kept past this call is copied). Read this way, without the stream machinery
 * (a 'data' event costs ticks, async hooks and a Buffer per read). */
function onData(size, buffer) {
  let chunk = buffer.subarray(0, size);
  if (pending.length > 0) {
    pending.push(Buffer.from(chunk));
    pendingSize += size;
    if (pendingSize < pendingNeeds) return;
    chunk = Buffer.concat(pending, pendingSize);
    pending = [];
  }
  let offset = 0;
  while (chunk.length - offset >= 4) {
    const n = chunk.readUInt32BE(offset);
    if (chunk.length - offset - 4 < n) break;
    const text = chunk.toString('utf8', offset + 4, offset + 4 + n);
    offset += 4 + n;
    handle(JSON.parse(text, text.includes(BYTES) ? reviveBytes : undefined));
  }
  startWaiting();
  if (offset < chunk.length) {
    const rest = Buffer.from(chunk.subarray(offset));
    pending = [rest];
    pendingSize = rest.length;
    pendingNeeds = rest.length >= 4 ? rest.readUInt32BE(0) + 4 : 4;
  }
}

// --- output capture -----------------------------------------------------------------------

let current = null; // the running task: { ctx, parts (null until it writes), size, dropped, replace }
let strayWritten = 0;
const realWrite = {
  out: process.stdout.write.bind(process.stdout),
  err: process.stderr.write.bind(process.stderr),
};

function chunkText(chunk, encoding) {
  if (typeof chunk === 'string') return chunk;
  return Buffer.from(chunk).toString(typeof encoding === 'string' ? encoding : 'utf8');
}

function capture(stream) {
  return function write(chunk, encoding, callback) {
    const done = typeof encoding === 'function' ? encoding : callback;
    const task = current;
    if (task === null) {
      // between tasks (a stray timer): to the process's log file, bounded
      if (strayWritten < STRAY_MAX) {
        const text = chunkText(chunk, encoding);
        strayWritten += text.length;
        realWrite[stream](text);
      }
    } else {
      const text = chunkText(chunk, encoding);
      const room = LOG_MAX - task.size;
      if (room > 0) {
        const kept = text.length <= room ? text : text.slice(0, room);
        if (task.parts === null) task.parts = [kept];
        else task.parts.push(kept);
        task.size += kept.length;
        task.dropped += text.length - kept.length;
      } else {
        task.dropped += text.length;
      }
    }
    if (typeof done === 'function') process.nextTick(done);
    return true;
  };
}

function logsOf(task) {
  if (task.parts === null && task.dropped === 0) return '';
  let text = task.parts === null ? '' : task.parts.join('');
  if (task.dropped) text += `\n[... ${task.dropped} more characters of output not kept]`;
  return text;
}

// --- errors -------------------------------------------------------------------------------

function cleanText(text) {
  return text.replace(ROOT_PATTERN, '');
}

function cleanStack(stack) {
  const lines = stack.split('\n');
  const kept = [];
  for (const line of lines) {
    if (line.includes(HOST_FILE) || line.includes('(node:') || line.includes('at node:')) {
      continue;
    }
    kept.push(line);
  }
  // the callback convention's Promise, when the stack ends there, is the host's too
  if (kept.length > 1 && kept[kept.length - 1].trim() === 'at new Promise (<anonymous>)') kept.pop();
  return cleanText(kept.join('\n'));
}

function describeError(err) {
  if (err instanceof Error || (err !== null && typeof err === 'object' && typeof err.message === 'string')) {
    const name = typeof err.name === 'string' && err.name ? err.name : 'Error';
    const stack = typeof err.stack === 'string' ? cleanStack(err.stack) : null;
    return { name, message: cleanText(String(err.message)), stack };
  }
  let message;
  try {
    message = typeof err === 'string' ? err : JSON.stringify(err);
  } catch (_) {
    message = String(err);
  }
  return { name: 'Error', message: message === undefined ? String(err) : message, stack: null };
}

// --- the SDK: require('fnhub') / import fnhub from 'fnhub' -----------------------------------

const calls = new Map();
let callSeq = 0;

function sdkCall(op, args, options) {
  if (current === null || MODE !== 'serve') {
    const what = op.split('.')[0];
    return Promise.reject(new Error(`fnhub.${what} is only available while a function runs`));
  }
  const c = ++callSeq;
  return new Promise((resolve, reject) => {
    calls.set(c, { resolve, reject });
    send({ t: 'sdk', c, op, a: args, o: options || {} });
  });
}

function onReply(frame) {
  const call = calls.get(frame.c);
  if (call === undefined) return;
  calls.delete(frame.c);
  if (frame.ok) {
    call.resolve(frame.v === undefined ? null : frame.v);
  } else {
    const err = new Error(frame.m);
    err.name = frame.y || 'Error';
    call.reject(err);
  }
}

function scopeOnly(options) {
  return options && options.scope ? { scope: options.scope } : {};
}

const cache = Object.freeze({
  set(key, value, options) {
    const o = typeof options === 'number' ? { expires: options } : { ...(options || {}) };
    const wire = { scope: o.scope, expires: o.expires, not_exists: o.notExists ?? o.not_exists };
    return sdkCall('cache.set', [key, value], wire);
  },
  get: (key, fallback = null, options) => sdkCall('cache.get', [key, fallback], scopeOnly(options)),
  delete: (key, options) => sdkCall('cache.delete', [key], scopeOnly(options)),
  exists: (key, options) => sdkCall('cache.exists', [key], scopeOnly(options)),
  ttl: (key, options) => sdkCall('cache.ttl', [key], scopeOnly(options)),
  expire: (key, seconds, options) => sdkCall('cache.expire', [key, seconds], scopeOnly(options)),
  incr: (key, step = 1, options) => sdkCall('cache.incr', [key, step], scopeOnly(options)),
  keys: (pattern = '*', options) => sdkCall('cache.keys', [pattern], scopeOnly(options)),
  hset: (key, field, value, options) => sdkCall('cache.hset', [key, field, value], scopeOnly(options)),
  hget: (key, field, fallback = null, options) =>
    sdkCall('cache.hget', [key, field, fallback], scopeOnly(options)),
  hgetall: (key, options) => sdkCall('cache.hgetall', [key], scopeOnly(options)),
  hdel: (key, fields, options) =>
    sdkCall('cache.hdel', [key, ...(Array.isArray(fields) ? fields : [fields])], scopeOnly(options)),
  hincr: (key, field, step = 1, options) =>
    sdkCall('cache.hincr', [key, field, step], scopeOnly(options)),
});

// a run frame's context is an array, in this order (host.py `run_entry`): no key names to
// write and parse for every task
const CTX_TASK_ID = 0;
const CTX_FUNCTION = 1;
const CTX_ORIGIN = 2;
const CTX_ORIGIN_ID = 3;
const CTX_TRIGGER_TIME = 4;
const CTX_ATTEMPT = 5;
const CTX_QUEUE = 6;
const CTX_META = 7;

function ctxField(index) {
  const task = current;
  if (task === null) return null;
  const value = task.ctx[index];
  return value === undefined ? null : value;
}

const context = Object.freeze({
  get taskId() { return ctxField(CTX_TASK_ID); },
  get function() { return ctxField(CTX_FUNCTION); },
  get script() {
    const ref = ctxField(CTX_FUNCTION);
    return ref === null ? null : ref.slice(0, ref.lastIndexOf('.'));
  },
  get origin() { return ctxField(CTX_ORIGIN); },
  get originId() { return ctxField(CTX_ORIGIN_ID); },
  get triggerTime() { return ctxField(CTX_TRIGGER_TIME); },
  get attempt() { return ctxField(CTX_ATTEMPT); },
  get queue() { return ctxField(CTX_QUEUE); },
  get meta() { return ctxField(CTX_META) || {}; },
});

function connector(name) {
  return Object.freeze({
    name,
    publish: (topic, message, options) =>
      sdkCall('connector.publish', [name, topic, message === undefined ? null : message], options),
  });
}

function api(options, fn) {
  if (typeof options === 'function') [options, fn] = [fn, options];
  if (typeof fn !== 'function') throw new TypeError('fnhub.api(options, fn): fn must be a function');
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('fnhub.api(options, fn): options must be an object');
  }
  fn[OPTIONS] = options;
  return fn;
}

globalThis[SDK] = Object.freeze({ api, cache, context, connector });

// --- materialising scripts ----------------------------------------------------------------

const codes = new Map(); // "name@hash" → { code, esm }
const layouts = new Map(); // id → folder
const modules = new Map(); // "layout/name" → exports or namespace (or a Promise of one)
const resolved = new Map(); // "layout/name/fn" → { fn, conv }
const rootRequire = Module.createRequire(path.join(ROOT, 'index.js'));

function isEsm(code, filename) {
  try {
    vm.compileFunction(code, CJS_PARAMS, { filename });
    return false;
  } catch (err) {
    return err instanceof SyntaxError && ESM_HINT.test(err.message);
  }
}

function setUpRoot() {
  fs.mkdirSync(ROOT, { recursive: true });
  // a package scope of our own: a `"type": "module"` further up must not apply to scripts
  fs.writeFileSync(path.join(ROOT, 'package.json'), '{"type": "commonjs"}\n');
  const sdkDir = path.join(ROOT, 'node_modules', 'fnhub');
  fs.mkdirSync(sdkDir, { recursive: true });
  fs.writeFileSync(
    path.join(sdkDir, 'package.json'),
    JSON.stringify({
      name: 'fnhub',
      exports: { import: './index.mjs', require: './index.js' },
      main: './index.js',
    }),
  );
  fs.writeFileSync(path.join(sdkDir, 'index.js'), "module.exports = globalThis[Symbol.for('fnhub.sdk')];\n");
  fs.writeFileSync(
    path.join(sdkDir, 'index.mjs'),
    "const sdk = globalThis[Symbol.for('fnhub.sdk')];\nexport default sdk;\n" +
      'export const { api, cache, context, connector } = sdk;\n',
  );
  // npm packages: each one linked beside the SDK, so CommonJS and ES modules (which ignore
  // NODE_PATH) find them by walking up from a script's folder
  if (CONFIG.modules) {
    let names = [];
    try {
      names = fs.readdirSync(CONFIG.modules);
    } catch (_) {
      names = [];
    }
    for (const name of names) {
      if (name === 'fnhub' || name.startsWith('.')) continue;
      try {
        fs.symlinkSync(path.join(CONFIG.modules, name), path.join(ROOT, 'node_modules', name));
      } catch (_) {
        // a name we cannot link is left out; the script's require then says it is missing
      }
    }
  }
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (request, parent, ...rest) {
    try {
      return resolveFilename.call(this, request, parent, ...rest);
    } catch (err) {
      if (err && err.code === 'MODULE_NOT_FOUND' && /^\.\.?\//.test(request)) {
        try {
          return resolveFilename.call(this, request.replace(/\.js$/, '') + '.mjs', parent, ...rest);
        } catch (_) {
          // the first error is the one to report
        }
      }
      throw err;
    }
  };
}

let hooked = false;

/** `import './other.js'` of a script that is an ES module (written as other.mjs), and an
 * extensionless relative import, resolve as they would in the project folder. Registered with
 * the first ES module only: registering costs ~45 ms of start-up (a loader thread). */
function hookResolution() {
  if (hooked || typeof Module.register !== 'function') return;
  hooked = true;
  Module.register(pathToFileURL(path.join(__dirname, 'hooks.mjs')).href);
}

function addLayout(id, files) {
  const dir = path.join(ROOT, `L${id}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, [hash, code]] of Object.entries(files)) {
    const key = `${name}@${hash}`;
    let entry = codes.get(key);
    if (entry === undefined) {
      entry = { code, esm: isEsm(code, path.join(dir, `${name}.js`)) };
      codes.set(key, entry);
    }
    if (entry.esm) hookResolution();
    fs.writeFileSync(path.join(dir, name + (entry.esm ? '.mjs' : '.js')), entry.code);
  }
  layouts.set(id, { dir, files });
}

function scriptFile(layout, name) {
  const entry = layout.files[name];
  if (entry === undefined) return null;
  const { esm } = codes.get(`${name}@${entry[0]}`);
  return { file: path.join(layout.dir, name + (esm ? '.mjs' : '.js')), esm };
}

/** The module's exports (CommonJS) or namespace (ES module): a value, or a Promise of one. */
function loadModule(layoutId, name) {
  const key = `${layoutId}/${name}`;
  const known = modules.get(key);
  if (known !== undefined) return known;
  const layout = layouts.get(layoutId);
  const where = layout && scriptFile(layout, name);
  if (!where) throw Object.assign(new Error(`no script '${name}' in layout ${layoutId}`), { unknown: true });
  let loaded;
  if (where.esm) {
    loaded = import(pathToFileURL(where.file).href).then((ns) => {
      modules.set(key, ns);
      return ns;
    });
    loaded.catch(() => modules.delete(key));
  } else {
    loaded = rootRequire(where.file);
  }
  modules.set(key, loaded);
  return loaded;
}

// --- signatures: which convention, which kwargs -------------------------------------------

const conventions = new WeakMap(); // fn → { conv, params }

/** The text between the brackets opening at `start`, skipping strings, templates, comments. */
function scanTo(src, start, open, close) {
  let depth = 0;
  for (let i = start; i < src.length; i++) {
    const ch = src[i];
    if (ch === '"' || ch === "'" || ch === '`') {
      i = skipString(src, i);
    } else if (ch === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      i = end < 0 ? src.length : end;
    } else if (ch === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 1;
    } else if (ch === '(' || ch === '[' || ch === '{') {
      depth++;
    } else if (ch === ')' || ch === ']' || ch === '}') {
      depth--;
      if (depth === 0 && ch === close) return i;
    }
  }
  return -1;
}

function skipString(src, start) {
  const quote = src[start];
  for (let i = start + 1; i < src.length; i++) {
    const ch = src[i];
    if (ch === '\\') {
      i++;
    } else if (quote === '`' && ch === '$' && src[i + 1] === '{') {
      i = scanTo(src, i + 1, '{', '}');
      if (i < 0) return src.length;
    } else if (ch === quote) {
      return i;
    }
  }
  return src.length;
}

/** Split at the commas outside brackets, strings and comments; comments dropped. */
function splitTop(text) {
  const parts = [];
  let depth = 0;
  let part = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"' || ch === "'" || ch === '`') {
      const end = skipString(text, i);
      part += text.slice(i, end + 1);
      i = end;
    } else if (ch === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 1;
    } else {
      if (ch === '(' || ch === '[' || ch === '{') depth++;
      else if (ch === ')' || ch === ']' || ch === '}') depth--;
      if (ch === ',' && depth === 0) {
        parts.push(part.trim());
        part = '';
      } else {
        part += ch;
      }
    }
  }
  if (part.trim()) parts.push(part.trim());
  return parts;
}

/** The first `=` outside brackets and strings that assigns (not `==`, `=>`), or -1. */
function assignAt(text) {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"' || ch === "'" || ch === '`') i = skipString(text, i);
    else if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') depth--;
    else if (ch === '=' && depth === 0 && text[i + 1] !== '=' && text[i + 1] !== '>' && !'!<>='.includes(text[i - 1])) {
      return i;
    }
  }
  return -1;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** A default written as a JSON-like literal, for forms to show; undefined otherwise. */
function literal(text) {
  text = text.trim();
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text)) return Number(text);
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text === 'null') return null;
  if (text === '[]') return [];
  if (text === '{}') return {};
  const m = /^(['"])((?:(?!\1)[^\\])*)\1$/.exec(text);
  if (m) return m[2];
  return undefined;
}

function paramSource(src) {
  let s = src.trimStart();
  if (s.startsWith('class') && /^class\b/.test(s)) return null;
  if (/^async\b/.test(s)) s = s.slice(5).trimStart();
  const single = /^([A-Za-z_$][\w$]*)\s*=>/.exec(s);
  if (single) return single[1];
  const open = s.indexOf('(');
  if (open < 0) return null;
  const close = scanTo(s, open, '(', ')');
  return close < 0 ? null : s.slice(open + 1, close);
}

const TAKES_ANY = (name) => [{ name, kind: 'var_keyword', required: false }];
const EVENT_CONTEXT = [
  { name: 'event', kind: 'positional_or_keyword', required: true },
  { name: 'context', kind: 'positional_or_keyword', required: true },
];

/** Params of a kwargs function from its destructuring pattern: `({a, b = 1, ...rest})`. */
function patternParams(pattern) {
  const close = scanTo(pattern, 0, '{', '}');
  const inner = pattern.slice(1, close < 0 ? pattern.length : close);
  const params = [];
  for (const prop of splitTop(inner)) {
    if (prop.startsWith('...')) {
      params.push({ name: prop.slice(3).trim() || 'kwargs', kind: 'var_keyword', required: false });
      continue;
    }
    const eq = assignAt(prop);
    const head = (eq < 0 ? prop : prop.slice(0, eq)).trim();
    let key = head;
    const colon = head.indexOf(':');
    if (head.startsWith('[')) return TAKES_ANY('kwargs'); // a computed key: anything goes
    if (/^['"]/.test(head)) {
      const end = skipString(head, 0);
      key = head.slice(1, end);
    } else if (colon >= 0) {
      key = head.slice(0, colon).trim();
    }
    const param = { name: key, kind: 'keyword_only', required: eq < 0 };
    if (eq >= 0) {
      const value = literal(prop.slice(eq + 1));
      if (value !== undefined && value !== null) param.default = value;
    }
    params.push(param);
  }
  return params;
}

const KWARGS = 0;
const EVENT = 1;
const CALLBACK = 2;

function conventionOf(fn) {
  let found = conventions.get(fn);
  if (found !== undefined) return found;
  let source = null;
  try {
    source = paramSource(Function.prototype.toString.call(fn));
  } catch (_) {
    source = null;
  }
  const params = source === null ? [] : splitTop(source);
  const plain = params.map((p) => {
    const eq = assignAt(p);
    return (eq < 0 ? p : p.slice(0, eq)).trim();
  });
  if ((params.length === 2 || params.length === 3) && plain.every((p) => IDENT.test(p))) {
    found = { conv: params.length === 2 ? EVENT : CALLBACK, params: EVENT_CONTEXT };
  } else if (params.length === 0 || plain[0].startsWith('...')) {
    found = { conv: KWARGS, params: TAKES_ANY(params.length ? plain[0].slice(3).trim() : 'kwargs') };
  } else if (plain[0].startsWith('{')) {
    found = { conv: KWARGS, params: patternParams(plain[0]) };
  } else if (IDENT.test(plain[0])) {
    found = { conv: KWARGS, params: TAKES_ANY(plain[0]) };
  } else {
    found = { conv: KWARGS, params: TAKES_ANY('kwargs') };
  }
  conventions.set(fn, found);
  return found;
}

function isAsync(fn) {
  const kind = fn.constructor && fn.constructor.name;
  return kind === 'AsyncFunction' || kind === 'AsyncGeneratorFunction';
}

// --- running a task -----------------------------------------------------------------------

function finishOk(task, conv, value) {
  if (task !== current) return;
  finishOkNow(task, conv, value);
  startWaiting();
}

function finishOkNow(task, conv, value) {
  current = null;
  if (conv !== KWARGS) {
    // Baetyl's rule: null, undefined and anything `== ""` publish nothing
    let empty = value === null || value === undefined;
    if (!empty) {
      try {
        empty = value == ''; // eslint-disable-line eqeqeq
      } catch (_) {
        empty = false;
      }
    }
    if (empty) value = null;
  }
  let json;
  try {
    if (value === undefined || value === null) json = 'null';
    else if (value instanceof Uint8Array) json = JSON.stringify({ [BYTES]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') });
    else if (typeof value === 'object') json = JSON.stringify(value, bytesReplacer);
    else json = JSON.stringify(value);
  } catch (err) {
    return sendFailure(task, 'ResultNotSerializable', `the function returned a value that is not JSON-serialisable (${err.message})`, null);
  }
  if (json === undefined) {
    return sendFailure(task, 'ResultNotSerializable', `the function returned a ${typeof value}, which is not JSON-serialisable`, null);
  }
  if (json.length * 3 > RESULT_MAX) {
    const size = Buffer.byteLength(json);
    if (size > RESULT_MAX) {
      return sendFailure(task, 'ResultTooLarge', `the result is ${size} bytes as JSON, over the limit of ${RESULT_MAX} bytes`, null);
    }
  }
  const logs = task.parts === null && task.dropped === 0 ? '""' : JSON.stringify(logsOf(task));
  sendText('[1,' + json + ',' + logs + ']');
}

function sendFailure(task, type, message, stack) {
  current = null;
  if (task.replace) waiting.length = 0; // the process is replaced: what was sent ahead runs in the next one
  sendText(JSON.stringify([0, type, message, stack, logsOf(task), task.replace]));
}

function finishError(task, err) {
  if (task !== current) return;
  const { name, message, stack } = describeError(err);
  sendFailure(task, name, message, stack);
  startWaiting();
}

function invoke(task, entry, kwargs) {
  let value;
  const fn = entry.fn; // called bare, so stacks read `at exports.f`, not `[as fn]`
  try {
    if (entry.conv === KWARGS) {
      value = fn(kwargs);
    } else if (entry.conv === EVENT) {
      value = fn(kwargs.event, kwargs.context);
    } else {
      value = new Promise((resolve, reject) => {
        const returned = fn(kwargs.event, kwargs.context, (err, result) =>
          err !== null && err !== undefined ? reject(err) : resolve(result),
        );
        if (returned !== null && typeof returned === 'object' && typeof returned.then === 'function') {
          returned.then(undefined, reject);
        }
      });
    }
  } catch (err) {
    finishError(task, err);
    return;
  }
  if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
    value.then(
      (result) => finishOk(task, entry.conv, result),
      (err) => finishError(task, err),
    );
  } else {
    finishOk(task, entry.conv, value);
  }
}

function resolveIn(task, run, exportsOf) {
  const script = run[RUN_SCRIPT];
  const name = run[RUN_FUNCTION];
  if (exportsOf !== null && (typeof exportsOf === 'object' || typeof exportsOf === 'function')) {
    const fn = exportsOf[name];
    if (typeof fn === 'function' && !name.startsWith('_')) {
      const entry = { fn, conv: conventionOf(fn).conv };
      resolved.set(`${run[RUN_LAYOUT]}/${script}/${name}`, entry);
      return entry;
    }
  }
  sendFailure(task, 'UnknownFunction', `unknown function '${script}.${name}' (not exported by ${script})`, null);
  return null;
}

function loadFailure(task, run, err) {
  if (task !== current) return;
  const { name, message, stack } = describeError(err);
  const layout = layouts.get(run[RUN_LAYOUT]);
  const file = layout && layout.files[run[RUN_SCRIPT]];
  const version = file && file[0] ? `@${String(file[0]).slice(0, 8)}` : '';
  sendFailure(task, 'ScriptLoadError', `loading script ${run[RUN_SCRIPT]}${version} failed: ${name}: ${message}`, stack);
  startWaiting();
}

// Tasks Python sent ahead (the next ones of its batch) wait here and start, in order, as soon as
// the one before ends, so Node does not wait for Python between tasks. One runs at a time. A run
// frame carries one or more tasks (those sent ahead together), each an array (host.py
// `run_entry`): no key names to write and parse for every task.
const waiting = [];
const RUN_LAYOUT = 0;
const RUN_SCRIPT = 1;
const RUN_FUNCTION = 2;
const RUN_KWARGS = 3;
const RUN_CTX = 4;
const RUN_EXPIRES = 5;
let starting = false;

function startWaiting() {
  if (starting) return; // the loop below, further up the stack, starts the next one
  starting = true;
  try {
    while (current === null && waiting.length > 0) onRun(waiting.shift());
  } finally {
    starting = false;
  }
}

/** Python takes back what was sent ahead and not started (the running task is slow). */
function onDrop() {
  const n = waiting.length;
  waiting.length = 0;
  send({ t: 'dropped', n });
}

function onRun(run) {
  const kwargs = run[RUN_KWARGS];
  const ctx = run[RUN_CTX];
  const expires = run[RUN_EXPIRES];
  if (expires !== null && Date.now() / 1000 > expires) {
    // sent ahead, and its expiry passed while it waited: not run (Python says so)
    sendText('[2]');
    return;
  }
  const task = { ctx, parts: null, size: 0, dropped: 0, replace: false }; // parts: at the first output
  current = task;
  const script = run[RUN_SCRIPT];
  const entry = resolved.get(`${run[RUN_LAYOUT]}/${script}/${run[RUN_FUNCTION]}`);
  if (entry !== undefined) {
    invoke(task, entry, kwargs);
    return;
  }
  let loaded;
  try {
    loaded = loadModule(run[RUN_LAYOUT], script);
  } catch (err) {
    if (err && err.unknown) {
      sendFailure(task, 'UnknownFunction', `unknown function '${script}.${run[RUN_FUNCTION]}' (no script '${script}')`, null);
    } else {
      loadFailure(task, run, err);
    }
    return;
  }
  if (loaded instanceof Promise) {
    loaded.then(
      (ns) => {
        if (task !== current) return;
        const found = resolveIn(task, run, ns);
        if (found !== null) invoke(task, found, kwargs);
        startWaiting();
      },
      (err) => loadFailure(task, run, err),
    );
  } else {
    const found = resolveIn(task, run, loaded);
    if (found !== null) invoke(task, found, kwargs);
  }
}

// --- inspecting scripts before they are published -----------------------------------------

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Where Node's own syntax check puts the error: `file:LINE\nsource\n   ^^^\n\nSyntaxError: ...` */
function syntaxFromCheck(file) {
  const run = childProcess.spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 20000 });
  if (run.status === 0) return null;
  return parseArrow(run.stderr || '', file);
}

function parseArrow(text, file) {
  const at = text.indexOf(file + ':');
  if (at < 0) return null;
  const lines = text.slice(at + file.length + 1).split('\n');
  const line = parseInt(lines[0], 10);
  if (!(line > 0)) return null;
  const source = lines[1] === undefined ? '' : lines[1];
  const caret = lines[2] === undefined ? -1 : lines[2].indexOf('^');
  const messageLine = lines.find((l) => /^SyntaxError: /.test(l));
  return {
    line,
    column: caret >= 0 ? caret + 1 : 1,
    message: messageLine ? messageLine.slice('SyntaxError: '.length) : 'invalid syntax',
    source,
  };
}

function syntaxProblem(found) {
  const pointer = found.source ? `\n    ${found.source}\n    ${' '.repeat(found.column - 1)}^` : '';
  return {
    message: `syntax error at line ${found.line}, column ${found.column}: ${found.message}${pointer}`,
    line: found.line,
    column: found.column,
  };
}

function checkSyntax(layout, name) {
  const where = scriptFile(layout, name);
  if (!where.esm) {
    try {
      vm.compileFunction(fs.readFileSync(where.file, 'utf8'), CJS_PARAMS, { filename: where.file });
      return null;
    } catch (err) {
      if (!(err instanceof SyntaxError)) return null;
      const found = parseArrow(String(err.stack), where.file);
      return found ? syntaxProblem(found) : { message: `syntax error: ${err.message}`, line: null };
    }
  }
  const found = syntaxFromCheck(where.file);
  return found === null ? null : syntaxProblem(found);
}

function scriptOfFile(file, layout) {
  const base = path.basename(file).replace(/\.m?js$/, '');
  return path.dirname(file) === layout.dir && layout.files[base] !== undefined ? base : null;
}

/** The message names the deepest script frame; the line is the deepest one in `name` itself. */
function loadProblem(layout, name, err) {
  const { name: kind, message } = describeError(err);
  let where = '';
  let line = null;
  let column = null;
  const stack = err && typeof err.stack === 'string' ? err.stack : '';
  const framePattern = /(?:file:\/\/)?(\/[^\s():]+\.m?js):(\d+):(\d+)/g;
  for (const m of stack.matchAll(framePattern)) {
    const script = scriptOfFile(m[1], layout);
    if (script === null) continue;
    if (!where) {
      const text = (codes.get(`${script}@${layout.files[script][0]}`).code.split('\n')[m[2] - 1] || '').trim();
      where = ` (${path.basename(m[1])} line ${m[2]}: ${text})`;
    }
    if (script === name && line === null) {
      line = parseInt(m[2], 10);
      column = parseInt(m[3], 10);
    }
  }
  return { message: `error while loading: ${kind}: ${message}${where}`, line, column };
}

async function describeScript(layout, name) {
  const problem = checkSyntax(layout, name);
  if (problem) return { problem };
  let exportsOf;
  try {
    exportsOf = await loadModule(0, name);
  } catch (err) {
    if (err instanceof SyntaxError) {
      // a sibling it imports does not parse: name it
      for (const other of Object.keys(layout.files)) {
        const found = other === name ? null : checkSyntax(layout, other);
        if (found) return { problem: { message: `imported script ${other}: ${found.message}`, line: null } };
      }
    }
    return { problem: loadProblem(layout, name, err) };
  }
  const functions = [];
  if (exportsOf !== null && (typeof exportsOf === 'object' || typeof exportsOf === 'function')) {
    for (const key of Object.keys(exportsOf)) {
      const fn = exportsOf[key];
      if (typeof fn !== 'function' || key.startsWith('_') || key === 'default') continue;
      if (/^class\b/.test(Function.prototype.toString.call(fn))) continue;
      if (!NAME.test(key)) {
        return { problem: { message: `cannot export ${key}: function names must be letters, digits and '_'`, line: null } };
      }
      const { conv, params } = conventionOf(fn);
      let options = {};
      try {
        options = fn[OPTIONS] ? JSON.parse(JSON.stringify(fn[OPTIONS])) : {};
      } catch (err) {
        return { problem: { message: `cannot export ${key}: its fnhub.api options are not JSON (${err.message})`, line: null } };
      }
      functions.push({
        name: key,
        params,
        is_async: isAsync(fn),
        convention: conv === KWARGS ? 'kwargs' : 'event_context',
        options,
      });
    }
  }
  return { functions };
}

async function onInspect(frame) {
  addLayout(0, frame.files);
  const layout = layouts.get(0);
  const ok = {};
  const errors = {};
  for (const name of frame.pending) {
    const found = await describeScript(layout, name);
    if (found.problem) errors[name] = found.problem;
    else ok[name] = found.functions;
  }
  send({ t: 'inspected', ok, errors });
}

// --- main ---------------------------------------------------------------------------------

function handle(frame) {
  switch (frame.t) {
    case 'run':
      for (const run of frame.r) waiting.push(run);
      break;
    case 'drop':
      onDrop();
      break;
    case 'r':
      onReply(frame);
      break;
    case 'layout':
      addLayout(frame.id, frame.files);
      break;
    case 'inspect':
      onInspect(frame).catch((err) => {
        send({ t: 'inspected', ok: {}, errors: { '': { message: describeError(err).message } } });
      });
      break;
    default:
      break;
  }
}

function failCurrent(err) {
  const task = current;
  if (task === null) return false;
  task.replace = true;
  finishError(task, err);
  return true;
}

// like the worker child, which catches them with a handler doing nothing: the host ends when
// its input closes (its child is done) or by SIGKILL (deadline, parent death), never half-way
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('unhandledRejection', (reason) => {
  if (!failCurrent(reason)) realWrite.err(`fnhub: unhandled rejection between tasks: ${describeError(reason).stack || describeError(reason).message}\n`);
});
process.on('uncaughtException', (err) => {
  if (!failCurrent(err)) realWrite.err(`fnhub: uncaught exception between tasks: ${describeError(err).stack || describeError(err).message}\n`);
});
let closing = false;
process.on('exit', (code) => {
  // process.exit() from a function, or the end of the event loop: say so before the pipe closes
  if (closing) return;
  try {
    sendText(JSON.stringify({ t: 'exit', code }));
  } catch (_) {
    // nothing to tell anyone
  }
});

setUpRoot();
process.stdout.write = capture('out');
process.stderr.write = capture('err');
const input = new net.Socket({
  fd: IN_FD,
  readable: true,
  writable: false,
  onread: { buffer: Buffer.allocUnsafe(1 << 16), callback: onData },
});
function close() {
  closing = true;
  process.exit(0);
}
input.on('end', close);
input.on('error', close);
