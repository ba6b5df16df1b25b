// The operators' status page: polls /api/constellation/status/all (every node, asked by this
// node's server) and draws the table and a throughput/finality chart of alpha, kept in memory
// while the page is open (at most POINTS_MAX points). Reads only; it signs nothing.

const POLL_MS = 1000;
const POINTS_MAX = 120;
const points = [];

function text(value) {
  return value === null || value === undefined ? "—" : String(value);
}

function cell(row, value, className) {
  const td = document.createElement("td");
  td.textContent = text(value);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function lagOf(node, alphaApex) {
  if (typeof node.apex !== "number" || typeof alphaApex !== "number") return null;
  return Math.max(0, alphaApex - node.apex);
}

function lastError(node) {
  const error = node.last_error;
  if (!error || !error.reason) return node.state === "Ready" ? "" : node.reason;
  const at = error.at_ms ? new Date(error.at_ms).toISOString().slice(11, 19) + " " : "";
  return at + error.reason;
}

function renderNodes(nodes) {
  const body = document.querySelector("#nodes tbody");
  const alpha = nodes.find((node) => node.is_alpha);
  const alphaApex = alpha && typeof alpha.apex === "number" ? alpha.apex : null;
  body.replaceChildren();
  for (const node of nodes) {
    const row = document.createElement("tr");
    row.dataset.index = String(node.index);
    row.dataset.state = text(node.state);
    cell(row, node.index, "number");
    cell(row, node.is_alpha ? "alpha" : "auditor");
    cell(row, node.public_key.slice(0, 8) + "…", "key").title = node.public_key;
    const state = document.createElement("span");
    state.className = "state";
    state.dataset.state = text(node.state);
    state.textContent = text(node.state);
    cell(row, "").appendChild(state);
    cell(row, node.apex, "number apex");
    cell(row, node.finalized_apex, "number");
    cell(row, lagOf(node, alphaApex), "number lag");
    cell(row, node.quanta_per_s, "number");
    cell(row, node.finality_p50_ms === null || node.finality_p50_ms === undefined
      ? null : `${node.finality_p50_ms} ms`, "number");
    cell(row, lastError(node), "error");
    body.appendChild(row);
  }
  return alpha;
}

function drawSeries(context, values, max, color, width, height) {
  context.strokeStyle = color;
  context.lineWidth = 2;
  context.beginPath();
  values.forEach((value, i) => {
    const x = (i / (POINTS_MAX - 1)) * width;
    const y = height - (max > 0 ? (value / max) * (height - 10) : 0) - 5;
    if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
  });
  context.stroke();
}

function drawChart() {
  const canvas = document.getElementById("chart");
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const throughput = points.map((p) => p.throughput);
  const finality = points.map((p) => p.finality);
  const throughputMax = Math.max(1, ...throughput);
  const finalityMax = Math.max(1, ...finality);
  drawSeries(context, throughput, throughputMax, "#2f6fde", width, height);
  drawSeries(context, finality, finalityMax, "#e07b00", width, height);
  context.fillStyle = "#5b6475";
  context.font = "12px system-ui, sans-serif";
  context.fillText(`max ${throughputMax.toFixed(1)} quanta/s`, 6, 14);
  context.fillText(`max ${finalityMax} ms`, width - 90, 14);
  canvas.dataset.points = String(points.length);
}

async function poll() {
  const updated = document.getElementById("updated");
  try {
    const response = await fetch("/api/constellation/status/all", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const answer = await response.json();
    const alpha = renderNodes(answer.nodes);
    if (alpha) {
      points.push({ throughput: Number(alpha.quanta_per_s) || 0,
        finality: Number(alpha.finality_p50_ms) || 0 });
      if (points.length > POINTS_MAX) points.shift();
      drawChart();
    }
    updated.textContent = `Updated ${new Date(answer.now_ms).toISOString().slice(11, 19)} UTC`;
    updated.dataset.state = "ok";
  } catch (error) {
    updated.textContent = `Status unavailable: ${error.message}`;
    updated.dataset.state = "error";
  }
}

poll();
setInterval(poll, POLL_MS);
