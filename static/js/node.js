// The node the page talks to: its own origin until the page follows an alpha replacement
// (client.js connects to the new alpha the verified settings name), then the new alpha's
// origin. Every fetch and WebSocket of the trader page is built from here, so market data,
// the node table, the faucet and the reserves come from the node the gateway socket uses.
// Nothing here is a trust decision: the address comes from the verified settings chain, and
// what is fetched is checked (or shown as unverified) exactly as from the page's own node.

const OWN = new URL(window.location.origin);
let current = OWN;

/** The URL of `path` on the node the page talks to. */
export function nodeUrl(path) {
  return new URL(path, current);
}

/** The WebSocket URL of `path` on the node the page talks to. */
export function nodeSocketUrl(path) {
  const url = nodeUrl(path);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

/** The page's own node (the one that served it). */
export function ownNode() {
  return OWN;
}

/** Whether the page talks to another node than the one that served it. */
export function hasFollowed() {
  return current.origin !== OWN.origin;
}

/** Makes `address` the node the page talks to; tells (with a "constellation-node" event on
 * window) whether it changed. */
export function followNode(address) {
  const next = new URL(new URL(address).origin);
  if (next.origin === current.origin) return false;
  current = next;
  window.dispatchEvent(new CustomEvent("constellation-node", { detail: { origin: next.origin } }));
  return true;
}
