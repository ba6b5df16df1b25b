// Market data (orderbook depth and recent trades) from the chronicler's JSON feed
// (/ws/chronicler/): {"op":"subscribe","feed":"depth"|"trades","market":"XLM"} is answered by
// a snapshot and then update pushes. Without a chronicler the page still works and says
// "market data unavailable"; it keeps retrying in the background.

import { formatAmount } from "./amounts.js";
import { $, element, fillTable } from "./ui.js";

const RETRY_MS = 5000;
const TRADES_SHOWN = 20;

export class MarketView {
  constructor(baseUrl) {
    this.url = new URL("/ws/chronicler/", baseUrl);
    this.url.protocol = this.url.protocol === "https:" ? "wss:" : "ws:";
    this.market = null;
    this.socket = null;
    this.trades = [];
  }

  /** Shows `market` and (re)subscribes to its depth and trades. */
  select(market) {
    this.market = market;
    this.trades = [];
    this.render({ bids: [], asks: [] });
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.subscribe();
    else if (!this.socket) this.connect();
  }

  connect() {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.status("Live market data.");
      this.subscribe();
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = () => {
      this.socket = null;
      this.status("Market data unavailable (the chronicler is not reachable); retrying…", true);
      setTimeout(() => this.connect(), RETRY_MS);
    };
  }

  status(text, isError = false) {
    const node = $("#market-status");
    node.textContent = text;
    node.classList.toggle("error", isError);
  }

  subscribe() {
    for (const feed of ["depth", "trades"]) {
      this.socket.send(JSON.stringify({ op: "subscribe", feed, market: this.market }));
    }
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.op === "error") {
      this.status(`Market data error: ${message.message || message.status}`, true);
      return;
    }
    if (message.market !== this.market) return;
    if (message.feed === "depth") this.render(message.data);
    if (message.feed === "trades") this.addTrades(message.op, message.data);
  }

  addTrades(op, data) {
    const items = Array.isArray(data) ? data : [data];
    this.trades = op === "snapshot" ? items : [...items, ...this.trades];
    this.trades = this.trades.slice(0, TRADES_SHOWN);
    const rows = this.trades.map((trade) => [
      new Date(Number(trade.timestamp)).toLocaleTimeString(),
      element("span", trade.side, trade.side === "sell" || trade.side === 1 ? "sell" : "buy"),
      String(trade.price),
      formatAmount(trade.amount),
    ]);
    fillTable("#trades", rows, "No trades yet.");
  }

  render(depth) {
    const levels = (side) => (depth && depth[side] ? depth[side] : []);
    const row = (level) => [String(level.price), formatAmount(level.amount)];
    fillTable("#asks", [...levels("asks")].reverse().map(row), "No asks.");
    fillTable("#bids", levels("bids").map(row), "No bids.");
  }
}
