// Market data from the chronicler's JSON feed (/ws/chronicler/): depth, trades, the 24 h
// ticker and 1-minute price frames, each answered by a snapshot and then update pushes
// (docs/chronicler.md). Without a chronicler the page still works and says "market data
// unavailable"; it keeps retrying in the background.
//
// The candle chart is hand-drawn SVG (chart.js here, ~60 lines): at most 200 candles of one
// series need no charting library, and a vendored one would be third-party code to vet and
// keep up to date on a page that holds secret keys, with no build step to tree-shake it.

import { formatAmount, formatPriceText } from "./amounts.js";
import { drawCandles } from "./chart.js";
import { nodeSocketUrl } from "./node.js";
import { $, element, fillTable, timeText } from "./ui.js";

const RETRY_MS = 5000;
const TRADES_SHOWN = 20;
const FEEDS = ["depth", "trades", "ticker", "frames"];
const FRAME_PERIOD = "1m";

export class MarketView {
  /** `onPick({side, price, amount})` is called when a depth level is clicked. */
  constructor(quote, onPick) {
    this.quote = quote;
    this.onPick = onPick;
    this.market = null;
    this.socket = null;
    this.trades = [];
    this.depth = { bids: [], asks: [] };
  }

  /** Shows `market` and (re)subscribes to its feeds. */
  select(market) {
    if (this.market && this.socket && this.socket.readyState === WebSocket.OPEN) this.unsubscribe();
    this.market = market;
    this.trades = [];
    $("#ticker-pair").textContent = `${market}/${this.quote}`;
    this.render({ bids: [], asks: [] });
    this.renderTicker(null);
    drawCandles($("#chart"), []);
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.subscribe();
    else if (!this.socket) this.connect();
  }

  connect() {
    // Built at every connection: after an alpha replacement the node is the new alpha.
    const socket = new WebSocket(nodeSocketUrl("/ws/chronicler/"));
    this.socket = socket;
    socket.onopen = () => {
      this.status("Live market data.");
      this.subscribe();
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") this.receive(event.data);
    };
    socket.onclose = () => {
      this.socket = null;
      this.status("Market data unavailable (the chronicler is not reachable); retrying…", true);
      setTimeout(() => this.connect(), RETRY_MS);
    };
  }

  /** The page now talks to another node: a socket still open on the old one is closed, and
   * the retry (as after any close) connects to the new one. */
  moveNode() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.close();
  }

  status(text, isError = false) {
    const node = $("#market-status");
    node.textContent = text;
    node.classList.toggle("error", isError);
  }

  request(op, feed) {
    const message = { op, feed, market: this.market };
    if (feed === "frames") message.period = FRAME_PERIOD;
    this.socket.send(JSON.stringify(message));
  }

  subscribe() {
    for (const feed of FEEDS) this.request("subscribe", feed);
  }

  unsubscribe() {
    for (const feed of FEEDS) this.request("unsubscribe", feed);
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
    if (message.market !== this.market || !message.data) return;
    if (message.feed === "depth") this.render(message.data);
    if (message.feed === "trades") this.addTrades(message.op, message.data);
    if (message.feed === "ticker") this.renderTicker(message.data);
    if (message.feed === "frames") drawCandles($("#chart"), message.data);
  }

  addTrades(op, data) {
    const items = Array.isArray(data) ? data : [data];
    this.trades = op === "snapshot" ? items : [...items, ...this.trades];
    this.trades = this.trades.slice(0, TRADES_SHOWN);
    const rows = this.trades.map((trade) => [
      timeText(trade.timestamp),
      element("span", trade.side, trade.side === "sell" || trade.side === 1 ? "sell" : "buy"),
      formatPriceText(trade.price),
      formatAmount(trade.amount),
    ]);
    fillTable("#trades", rows, "No trades yet.");
  }

  renderTicker(ticker) {
    const close = ticker ? ticker.close : null;
    $("#ticker-last").textContent = formatPriceText(close);
    $("#ticker-high").textContent = formatPriceText(ticker ? ticker.high : null);
    $("#ticker-low").textContent = formatPriceText(ticker ? ticker.low : null);
    const volume = ticker ? `${formatAmount(ticker.volume ?? 0)} ${this.market}` : "—";
    $("#ticker-volume").textContent = volume;
    const change = $("#ticker-change");
    change.textContent = "—";
    change.className = "";
    if (ticker && ticker.open !== null && close !== null && Number(ticker.open) > 0) {
      const percent = (Number(close) / Number(ticker.open) - 1) * 100;
      change.textContent = `${percent >= 0 ? "+" : ""}${percent.toFixed(2)}%`;
      change.className = percent >= 0 ? "buy" : "sell";
    }
  }

  render(depth) {
    this.depth = depth || { bids: [], asks: [] };
    const levels = (side) => (this.depth[side] ? this.depth[side] : []);
    const rows = (side, pickSide) => {
      let total = 0n;
      return levels(side).map((level) => {
        total += BigInt(level.amount);
        const cumulative = total;
        const cell = element("td", formatPriceText(level.price));
        const pick = () => this.onPick({ side: pickSide, price: formatPriceText(level.price), amount: formatAmount(cumulative) });
        const row = [cell, formatAmount(level.amount), formatAmount(cumulative)];
        row.onPick = pick;
        return row;
      });
    };
    const asks = rows("asks", "buy");
    const bids = rows("bids", "sell");
    fillTable("#asks", [...asks].reverse(), "No asks.");
    fillTable("#bids", bids, "No bids.");
    bindPicks("#asks", [...asks].reverse());
    bindPicks("#bids", bids);
    const bestBid = levels("bids")[0];
    const bestAsk = levels("asks")[0];
    const spread = bestBid && bestAsk ? formatPriceText(Number(bestAsk.price) - Number(bestBid.price)) : "—";
    $("#ticker-spread").textContent = spread;
  }
}

/** Makes each rendered depth row clickable (and reachable by keyboard). */
function bindPicks(selector, rows) {
  const rendered = document.querySelectorAll(`${selector} tbody tr`);
  rows.forEach((row, index) => {
    const node = rendered[index];
    if (!node || !row.onPick) return;
    node.classList.add("pick");
    node.tabIndex = 0;
    node.title = "Fill the order form with this price and the total up to it";
    node.addEventListener("click", row.onPick);
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter") row.onPick();
    });
  });
}
