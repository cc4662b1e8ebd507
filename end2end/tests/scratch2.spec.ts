import { expect, logIn, test } from "./helpers";
import * as fs from "fs";
const COLS = 25, NODES = 500;
function bigWorkflow() {
  const nodes = Array.from({ length: NODES }, (_, i) => ({ key: `n${i}`, kind: "agent", capability: "data_analysis", prompt: `step ${i}`, position: { x: (i % COLS) * 220, y: Math.floor(i / COLS) * 120 } }));
  const edges: { from: string; to: string }[] = [];
  for (let i = 0; i + COLS < NODES; i++) edges.push({ from: `n${i}`, to: `n${i + COLS}` });
  for (let i = 0; edges.length < 600; i++) if (i % COLS !== COLS - 1) edges.push({ from: `n${i}`, to: `n${i + COLS + 1}` });
  return { nodes, edges };
}
test("trace", async ({ browser }) => {
  test.setTimeout(120_000);
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await logIn(page);
  const created = await page.request.post("/api/v1/workflows", { data: { name: "Five hundred", definition: bigWorkflow() } });
  const { id } = await created.json();
  const fresh = await browser.newContext({ storageState: await context.storageState(), viewport: { width: 1400, height: 900 } });
  const cold = await fresh.newPage();
  const cdp = await fresh.newCDPSession(cold);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
  await cdp.send("Profiler.start");
  await cold.goto(`/workflows/${id}`);
  await cold.waitForFunction((n) => document.querySelector('[data-testid="canvas"]')?.getAttribute("data-live") === "true" && document.querySelectorAll(".wf-node").length === n, NODES, { polling: "raf" });
  const live_ms = await cold.evaluate(() => Math.round(performance.now()));
  const { profile } = await cdp.send("Profiler.stop");
  fs.writeFileSync("/tmp/profile.json", JSON.stringify(profile));
  console.log("live", live_ms);
});
