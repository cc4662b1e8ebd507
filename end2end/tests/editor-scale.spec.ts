import { expect, logIn, test } from "./helpers";

// The editor at 500 nodes and 600 edges, measured in Chromium for the README: the cold load of
// the workflow (to a live canvas) and frame figures while dragging a node and while panning.
// Figures are printed, not asserted on; the assertions are on what was drawn and moved.

const COLS = 25;
const NODES = 500;

function bigWorkflow() {
  const nodes = Array.from({ length: NODES }, (_, i) => ({
    key: `n${i}`,
    kind: "agent",
    capability: "data_analysis",
    prompt: `step ${i}`,
    position: { x: (i % COLS) * 220, y: Math.floor(i / COLS) * 120 },
  }));
  const edges: { from: string; to: string }[] = [];
  // Down each column (475), then diagonals until there are 600; every edge goes to a higher
  // index, so the graph is acyclic.
  for (let i = 0; i + COLS < NODES; i++) edges.push({ from: `n${i}`, to: `n${i + COLS}` });
  for (let i = 0; edges.length < 600; i++) {
    if (i % COLS !== COLS - 1) edges.push({ from: `n${i}`, to: `n${i + COLS + 1}` });
  }
  return { nodes, edges };
}

/** p50/p95/max of a list of durations, rounded to 0.1 ms. */
function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 10) / 10;
  return { n: s.length, p50: at(0.5), p95: at(0.95), max: at(1) };
}

/** Starts recording, in the page, frame intervals and the script time of each pointermove. */
async function record(page: import("@playwright/test").Page) {
  await page.evaluate(() => {
    const w = window as unknown as Record<string, unknown>;
    const frames: number[] = [];
    const handlers: number[] = [];
    let last = performance.now();
    let started = 0;
    w.__rec = { frames, handlers, on: true };
    const tick = (t: number) => {
      frames.push(t - last);
      last = t;
      if ((w.__rec as { on: boolean }).on) requestAnimationFrame(tick);
    };
    requestAnimationFrame((t) => {
      last = t;
      requestAnimationFrame(tick);
    });
    // Capture on window runs before the app's handlers, bubbling on window after them.
    window.addEventListener("pointermove", () => (started = performance.now()), { capture: true });
    window.addEventListener("pointermove", () => handlers.push(performance.now() - started));
  });
}

async function stop(page: import("@playwright/test").Page) {
  return page.evaluate(() => {
    const rec = (window as unknown as Record<string, { frames: number[]; handlers: number[]; on: boolean }>).__rec;
    rec.on = false;
    return { frames: rec.frames.slice(1), handlers: rec.handlers };
  });
}

test("500 nodes and 600 edges: cold load, dragging a node and panning, measured", async ({ browser }) => {
  test.setTimeout(120_000);
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await logIn(page);
  const created = await page.request.post("/api/v1/workflows", { data: { name: "Five hundred", definition: bigWorkflow() } });
  expect(created.status()).toBe(201);
  const { id, state } = await created.json();
  expect(state).toBe("ready");

  // Cold: a fresh context (no cache) with the session, straight to the editor.
  const fresh = await browser.newContext({ storageState: await context.storageState(), viewport: { width: 1400, height: 900 } });
  const cold = await fresh.newPage();
  await cold.goto(`/workflows/${id}`);
  await cold.waitForFunction(
    (n) => document.querySelector('[data-testid="canvas"]')?.getAttribute("data-live") === "true"
      && document.querySelectorAll(".wf-node").length === n,
    NODES,
    { polling: "raf" },
  );
  const live_ms = await cold.evaluate(() => Math.round(performance.now()));
  const nav = await cold.evaluate(() => {
    const n = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
    return { html_ms: Math.round(n.responseEnd - n.startTime), load_ms: Math.round(n.loadEventEnd - n.startTime) };
  });
  await expect(cold.locator(".wf-edge")).toHaveCount(600);
  const far = await cold.locator(".wf-node.far").count();
  expect(far).toBeGreaterThan(0);
  console.log(`editor 500 nodes cold load: ${JSON.stringify({ ...nav, live_ms, nodes_drawn_as_placeholders: far })}`);

  // Drag one node across the canvas with real pointer input.
  const node = cold.locator('.wf-node[data-key="n26"] rect');
  const box = await node.boundingBox();
  if (!box) throw new Error("no node box");
  await record(cold);
  await cold.mouse.move(box.x + 20, box.y + 20);
  await cold.mouse.down();
  await cold.mouse.move(box.x + 420, box.y + 260, { steps: 120 });
  await cold.mouse.up();
  const drag = await stop(cold);
  const moved = await cold.locator('.wf-node[data-key="n26"] rect').boundingBox();
  expect(moved!.x).toBeGreaterThan(box.x + 300);

  // Pan by dragging the background: from between two nodes of a row (no node, no edge there)
  // to the same place two rows up and a column left.
  const first = await cold.locator('.wf-node[data-key="n0"] rect').boundingBox();
  if (!first) throw new Error("no node box");
  const zoom = first.width / 180;
  const gap = (col: number, row: number) => ({ x: first.x + (col * 220 + 200) * zoom, y: first.y + (row * 120 + 28) * zoom });
  await record(cold);
  await cold.mouse.move(gap(1, 2).x, gap(1, 2).y);
  await cold.mouse.down();
  await cold.mouse.move(gap(0, 0).x, gap(0, 0).y, { steps: 120 });
  await cold.mouse.up();
  const pan = await stop(cold);
  const after = await cold.locator('.wf-node[data-key="n0"] rect').boundingBox();
  expect(after!.x).toBeLessThan(first.x - 100 * zoom);

  console.log(
    `editor 500 nodes drag: ${JSON.stringify({ frame_ms: summary(drag.frames), pointermove_script_ms: summary(drag.handlers) })}`,
  );
  console.log(
    `editor 500 nodes pan: ${JSON.stringify({ frame_ms: summary(pan.frames), pointermove_script_ms: summary(pan.handlers) })}`,
  );
  await fresh.close();
  await context.close();
});
