// Small pieces every page uses: status badges, error boxes, text blocks, empty states.
import { useState } from 'preact/hooks';
import { json } from '../format.js';

export function Status({ status }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

export function ErrorBox({ error, title, id }) {
  if (!error) return null;
  return (
    <div class="error-box" role="alert" id={id}>
      {title && <strong>{title}: </strong>}
      {error.message || String(error)}
    </div>
  );
}

/** Preformatted text (logs, tracebacks, JSON), always rendered as text. */
export function Pre({ text, label, empty = '', class: cls = '' }) {
  if ((text === null || text === undefined || text === '') && !empty) return null;
  return (
    <div class={`pre-block ${cls}`}>
      {label && <div class="pre-label">{label}</div>}
      <pre>{text === null || text === undefined || text === '' ? empty : text}</pre>
    </div>
  );
}

export function JsonBlock({ value, label }) {
  return <Pre label={label} text={json(value)} />;
}

export function Loading({ what = '' }) {
  return <div class="muted loading">Loading{what ? ` ${what}` : ''}…</div>;
}

export function Empty({ children }) {
  return <div class="empty">{children}</div>;
}

export function CopyButton({ text, label = 'Copy' }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = document.createElement('textarea');
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <button type="button" class="small" onClick={copy}>
      {copied ? 'Copied' : label}
    </button>
  );
}

export function PageHead({ title, children }) {
  return (
    <div class="page-head">
      <h1>{title}</h1>
      <div class="page-actions">{children}</div>
    </div>
  );
}

/** A figure with its label, in a row of `.stats` (the overview's, the cluster's). */
export function Stat({ value, label, warn = false }) {
  return (
    <div class="stat card">
      <div class={warn ? 'stat-value warn' : 'stat-value'}>{value}</div>
      <div class="muted">{label}</div>
    </div>
  );
}
