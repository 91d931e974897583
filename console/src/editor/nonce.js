// The CSP nonce the server wrote into this page: CodeMirror's style element carries it, so the
// policy needs no 'unsafe-inline' for styles.
export const cspNonce = document.querySelector('meta[name="csp-nonce"]')?.content || '';
