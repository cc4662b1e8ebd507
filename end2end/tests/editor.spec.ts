import { admin, expect, logIn, test, watchConsole } from "./helpers";
import type { Page } from "@playwright/test";

/** The centre of an element's box on the page. */
async function centre(page: Page, selector: string) {
  const box = await page.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector} has no box`);
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

/** Drags with real pointer input: press, move in steps, release. */
async function drag(page: Page, from: { x: number; y: number }, to: { x: number; y: number }) {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(to.x, to.y, { steps: 12 });
  await page.mouse.up();
}

/** Creates a workflow over REST and opens it in the editor once the canvas is live. */
async function openNew(page: Page, name: string, definition: object): Promise<string> {
  const created = await page.request.post("/api/v1/workflows", { data: { name, definition } });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  await page.goto(`/workflows/${id}`);
  await expect(page.getByTestId("canvas")).toHaveAttribute("data-live", "true");
  return id;
}

test("draw a workflow with the mouse: the cycle is refused while drawing, undo/redo, save and reload", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  await page.getByRole("link", { name: "Workflows" }).click();
  await page.waitForLoadState("networkidle");
  await page.getByRole("button", { name: "New workflow" }).click();
  await expect(page).toHaveURL(/\/workflows\/[0-9a-f-]{36}$/);
  const id = page.url().split("/").pop();
  const canvas = page.getByTestId("canvas");
  await expect(canvas).toBeVisible();
  await expect(page.getByTestId("version")).toHaveText("version 1");

  // Three agent steps dragged from the palette onto the canvas.
  const box = await canvas.boundingBox();
  if (!box) throw new Error("no canvas box");
  const palette = await centre(page, '.palette-item[data-kind="agent"]');
  for (const y of [70, 220, 370]) {
    await drag(page, palette, { x: box.x + box.width / 2, y: box.y + y });
  }
  await expect(page.locator(".wf-node")).toHaveCount(3);
  await expect(page.getByTestId("minimap").locator(".mini-nodes")).toHaveAttribute("data-count", "3");
  for (const key of ["agent_1", "agent_2", "agent_3"]) {
    await expect(page.locator(`.wf-node[data-key="${key}"]`)).toBeVisible();
  }

  // Connect 1 → 2 → 3 from output ports to the nodes below.
  await drag(page, await centre(page, '[data-testid="out-agent_1"]'), await centre(page, '.wf-node[data-key="agent_2"] rect'));
  await drag(page, await centre(page, '[data-testid="out-agent_2"]'), await centre(page, '.wf-node[data-key="agent_3"] rect'));
  await expect(page.locator(".wf-edge")).toHaveCount(2);
  await expect(page.getByTestId("valid")).toBeVisible();

  // 3 → 1 would close a cycle: refused while the edge is still being drawn, with no server
  // to ask (every request from the page fails from here).
  await page.route("**/*", (route) => route.abort());
  const from = await centre(page, '[data-testid="out-agent_3"]');
  const target = await centre(page, '.wf-node[data-key="agent_1"] rect');
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(target.x, target.y, { steps: 12 });
  await expect(page.getByTestId("ghost-edge")).toHaveAttribute("data-refused", "true");
  await expect(page.getByTestId("refusal")).toHaveText(
    "would close a cycle: agent_3 → agent_1 → agent_2 → agent_3",
  );
  await page.mouse.up();
  await expect(page.locator(".wf-edge")).toHaveCount(2);
  await expect(page.getByTestId("notice")).toContainText("would close a cycle");
  await page.unroute("**/*");

  // Undo and redo, by button and by keyboard.
  await page.getByTestId("undo").click();
  await expect(page.locator(".wf-edge")).toHaveCount(1);
  await page.getByTestId("redo").click();
  await expect(page.locator(".wf-edge")).toHaveCount(2);
  await page.keyboard.press("Control+z");
  await expect(page.locator(".wf-edge")).toHaveCount(1);
  await page.keyboard.press("Control+Shift+z");
  await expect(page.locator(".wf-edge")).toHaveCount(2);

  // Move a node by dragging it; it snaps to the grid.
  const second = await centre(page, '.wf-node[data-key="agent_2"] rect');
  await drag(page, second, { x: second.x + 93, y: second.y + 7 });

  await expect(page.getByTestId("dirty")).toHaveText("unsaved changes");
  await page.getByTestId("save").click();
  await expect(page.getByTestId("dirty")).toHaveText("saved");
  await expect(page.getByTestId("version")).toHaveText("version 2");

  // The saved model, read back over REST, and the graph after a reload.
  const saved = await (await page.request.get(`/api/v1/workflows/${id}`)).json();
  expect(saved.state).toBe("ready");
  expect(saved.definition.nodes.map((n: { key: string }) => n.key)).toEqual(["agent_1", "agent_2", "agent_3"]);
  expect(saved.definition.edges.map((e: { from: string; to: string }) => `${e.from}>${e.to}`)).toEqual([
    "agent_1>agent_2",
    "agent_2>agent_3",
  ]);
  for (const n of saved.definition.nodes) {
    expect(n.position.x % 20).toBe(0);
    expect(n.position.y % 20).toBe(0);
  }
  await page.reload();
  await expect(page.locator(".wf-node")).toHaveCount(3);
  await expect(page.locator(".wf-edge")).toHaveCount(2);
  expect(errors).toEqual([]);
});

test("a run's node states arrive live on the canvas, and an approval is given from it", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  await page.getByRole("link", { name: "Workflows" }).click();
  await page.waitForLoadState("networkidle");
  const agent = (key: string, y: number) => ({
    key, kind: "agent", capability: "data_analysis", prompt: `do ${key}`, position: { x: 200, y },
  });
  const created = await page.request.post("/api/v1/workflows", {
    data: {
      name: "Live overlay",
      definition: {
        nodes: [agent("first", 40), { key: "gate", kind: "approval", prompt: "go on?", position: { x: 200, y: 160 } },
          agent("last", 280)],
        edges: [{ from: "first", to: "gate" }, { from: "gate", to: "last" }],
      },
    },
  });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  await page.reload();
  await page.locator(`a[href="/workflows/${id}"]`).click();
  await expect(page).toHaveURL(new RegExp(`/workflows/${id}$`));
  await expect(page.locator(".wf-node")).toHaveCount(3);

  await page.getByTestId("run").click();
  const first = page.locator('.wf-node[data-key="first"]');
  const gate = page.locator('.wf-node[data-key="gate"]');
  const last = page.locator('.wf-node[data-key="last"]');
  // While `first` runs, the edge into it has no source; the run moves on without a reload.
  await expect(first).toHaveAttribute("data-run-state", "running");
  await expect(first).toHaveAttribute("data-run-state", "completed");
  await expect(gate).toHaveAttribute("data-run-state", "waiting_for_approval");
  await expect(last).toHaveAttribute("data-run-state", "queued");

  await gate.locator("rect").click();
  await expect(page.getByTestId("node-state")).toHaveText("waiting for approval");
  await page.getByTestId("approve").click();
  await expect(gate).toHaveAttribute("data-run-state", "completed");
  await expect(page.locator('.wf-edge[data-to="last"]')).toHaveAttribute("data-active", "true");
  await expect(last).toHaveAttribute("data-run-state", "completed");
  await expect(page.getByTestId("run-status")).toHaveText("run completed");
  expect(errors).toEqual([]);
});

test("the browser's validation (WASM) and the server's say the same about one fixture", async ({ page }) => {
  await logIn(page);
  await page.getByRole("link", { name: "Workflows" }).click();
  await page.waitForLoadState("networkidle");
  const fixture = {
    inputs: [{ name: "topic", type: "number", default: "not a number" }],
    nodes: [
      { key: "a", kind: "agent", capability: "astrology", prompt: "{{inputs.missing}}", position: { x: 0, y: 0 } },
      { key: "b", kind: "agent", agent: "nobody", prompt: "{{nodes.c.output}}", position: { x: 0, y: 120 } },
      { key: "c", kind: "tool", tool: "teleport", position: { x: 0, y: 240 } },
      { key: "lonely", kind: "approval", position: { x: 300, y: 0 } },
    ],
    edges: [
      { from: "a", to: "b" }, { from: "b", to: "a" }, { from: "c", to: "ghost" },
      { from: "a", to: "c", condition: { op: "matches", pattern: "((" } },
    ],
  };
  const created = await page.request.post("/api/v1/workflows", { data: { name: "Broken on purpose", definition: fixture } });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  const server = await page.request.post(`/api/v1/workflows/${id}/validate`, { data: {} });
  expect(server.status()).toBe(422);
  const serverMessages = (await server.json()).error.issues.map((i: { message: string }) => i.message);
  expect(serverMessages.length).toBeGreaterThan(6);
  await page.reload();
  await page.locator(`a[href="/workflows/${id}"]`).click();
  await expect(page.getByTestId("issues").locator("li")).toHaveCount(serverMessages.length);
  expect(await page.getByTestId("issues").locator("li").allTextContents()).toEqual(serverMessages);
});

test("conditions and a tool's arguments are edited in the details panel, each one undo step, and saved", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  await page.getByRole("link", { name: "Workflows" }).click();
  await page.waitForLoadState("networkidle");
  const created = await page.request.post("/api/v1/workflows", {
    data: {
      name: "Branches",
      definition: {
        nodes: [
          { key: "a", kind: "agent", capability: "data_analysis", prompt: "look", position: { x: 200, y: 40 } },
          { key: "b", kind: "agent", capability: "data_analysis", prompt: "then", position: { x: 60, y: 200 } },
          { key: "t", kind: "tool", tool: "http_get", arguments: { url: "https://example.com" }, position: { x: 340, y: 200 } },
        ],
        edges: [{ from: "a", to: "b" }, { from: "a", to: "t" }],
      },
    },
  });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  await page.reload();
  await page.locator(`a[href="/workflows/${id}"]`).click();
  await expect(page.locator(".wf-node")).toHaveCount(3);

  await page.locator('.wf-node[data-key="a"] rect').click();
  const toB = page.getByTestId("condition-b");
  const toT = page.getByTestId("condition-t");
  await toB.getByTestId("op").selectOption("matches");
  await toB.getByTestId("op-text").fill("((");
  await toB.getByTestId("op-text").press("Tab");
  await expect(page.getByTestId("refused")).toContainText("the edge to b: the pattern is not a regular expression");
  await toB.getByTestId("op-text").fill("^tide");
  await toB.getByTestId("op-text").press("Tab");
  await expect(page.getByTestId("refused")).toHaveCount(0);
  await toT.getByTestId("op").selectOption("json_path");
  await toT.getByTestId("op-text").fill("$.ok");
  await toT.getByTestId("op-text").press("Tab");
  await toT.getByTestId("op-equals").fill("true");
  await toT.getByTestId("op-equals").press("Tab");
  await toT.getByTestId("negate").check();
  await expect(page.getByTestId("valid")).toBeVisible();

  await page.locator('.wf-node[data-key="t"] rect').click();
  const args = page.getByTestId("arguments");
  await args.fill("{not json");
  await args.press("Tab");
  await expect(page.getByTestId("refused")).toContainText("arguments: not JSON");
  await args.fill('{"url": "https://example.org"}');
  await args.press("Tab");
  await expect(page.getByTestId("refused")).toHaveCount(0);
  // The arguments' edit is one undo step, and redo brings it back.
  await page.getByTestId("undo").click();
  await expect(args).toHaveValue('{"url":"https://example.com"}');
  await page.getByTestId("redo").click();
  await expect(args).toHaveValue('{"url":"https://example.org"}');

  await page.getByTestId("save").click();
  await expect(page.getByTestId("dirty")).toHaveText("saved");
  const saved = await (await page.request.get(`/api/v1/workflows/${id}`)).json();
  expect(saved.state).toBe("ready");
  expect(saved.definition.edges).toEqual([
    { from: "a", to: "b", condition: { op: "matches", pattern: "^tide" } },
    { from: "a", to: "t", condition: { op: "json_path", path: "$.ok", equals: true, negate: true } },
  ]);
  const t = saved.definition.nodes.find((n: { key: string }) => n.key === "t");
  expect(t.arguments).toEqual({ url: "https://example.org" });
  expect(errors).toEqual([]);
});

test("Space+drag pans over a node without moving it; the panel changes a node's kind, names an agent and lists what it may reference", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  const agents = await (await page.request.get("/api/v1/agents")).json();
  const agentName: string = (agents.items ?? agents)[0].name;
  const id = await openNew(page, "Kinds and references", {
    inputs: [{ name: "topic" }],
    nodes: [
      { key: "a", kind: "agent", capability: "data_analysis", prompt: "look into {{inputs.topic}}", position: { x: 200, y: 40 } },
      { key: "b", kind: "agent", capability: "data_analysis", prompt: "then {{nodes.a.output}}", position: { x: 200, y: 200 } },
    ],
    edges: [{ from: "a", to: "b" }],
  });

  // Space held: pressing on node a and dragging pans the whole canvas; the model is unchanged.
  const a = page.locator('.wf-node[data-key="a"] rect');
  const b = page.locator('.wf-node[data-key="b"] rect');
  const [a0, b0] = [await a.boundingBox(), await b.boundingBox()];
  await page.keyboard.down(" ");
  await expect(page.getByTestId("canvas")).toHaveAttribute("data-hand", "true");
  await page.mouse.move(a0!.x + 30, a0!.y + 20);
  await page.mouse.down();
  await page.mouse.move(a0!.x + 130, a0!.y + 80, { steps: 10 });
  await page.mouse.up();
  await page.keyboard.up(" ");
  const [a1, b1] = [await a.boundingBox(), await b.boundingBox()];
  expect(a1!.x - a0!.x).toBeCloseTo(100, 0);
  expect(b1!.y - b0!.y).toBeCloseTo(60, 0);
  await expect(page.getByTestId("dirty")).toHaveText("saved");

  // Node b may reference the input and node a; node a the input only.
  await b.click();
  await expect(page.getByTestId("references")).toHaveText("It may reference: {{inputs.topic}} {{nodes.a.output}}");
  await a.click();
  await expect(page.getByTestId("references")).toHaveText("It may reference: {{inputs.topic}}");

  // b becomes an approval (keeping its prompt), and back with undo.
  await b.click();
  await page.getByTestId("kind").selectOption("approval");
  await expect(page.locator('.wf-node[data-key="b"]')).toHaveAttribute("data-kind", "approval");
  await expect(page.getByTestId("prompt")).toHaveValue("then {{nodes.a.output}}");
  await page.getByTestId("undo").click();
  await expect(page.locator('.wf-node[data-key="b"]')).toHaveAttribute("data-kind", "agent");

  // b names an agent instead of a capability; saved and read back.
  await page.getByTestId("agent").selectOption(agentName);
  await expect(page.getByTestId("valid")).toBeVisible();
  await page.getByTestId("save").click();
  await expect(page.getByTestId("version")).toHaveText("version 2");
  const saved = await (await page.request.get(`/api/v1/workflows/${id}`)).json();
  const node = saved.definition.nodes.find((n: { key: string }) => n.key === "b");
  expect(node.agent).toBe(agentName);
  expect(node.capability ?? null).toBeNull();
  expect(errors).toEqual([]);
});

test("a step becomes a sub-workflow chosen from the others, validated in the browser as on the server", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  const child = await page.request.post("/api/v1/workflows", {
    data: {
      name: `Child ${Date.now()}`,
      definition: {
        inputs: [{ name: "topic", required: true }],
        nodes: [{ key: "x", kind: "agent", capability: "data_analysis", prompt: "about {{inputs.topic}}", position: { x: 0, y: 0 } }],
      },
    },
  });
  expect(child.status()).toBe(201);
  const { id: childId } = await child.json();
  const id = await openNew(page, "Parent", {
    nodes: [
      { key: "a", kind: "agent", capability: "data_analysis", prompt: "look", position: { x: 200, y: 40 } },
      { key: "b", kind: "agent", capability: "data_analysis", prompt: "then", position: { x: 200, y: 200 } },
    ],
    edges: [{ from: "a", to: "b" }],
  });

  await page.locator('.wf-node[data-key="b"] rect').click();
  await page.getByTestId("kind").selectOption("workflow");
  await expect(page.locator('.wf-node[data-key="b"]')).toHaveAttribute("data-kind", "workflow");
  await page.getByTestId("sub-workflow").selectOption(childId);
  // The child needs `topic`: the browser says so, and says exactly what the server says.
  await expect(page.getByTestId("issues")).toContainText("needs input 'topic'");
  const browser = await page.getByTestId("issues").locator("li").allTextContents();
  await page.getByTestId("save").click();
  await expect(page.getByTestId("version")).toHaveText("version 2");
  const server = await page.request.post(`/api/v1/workflows/${id}/validate`, { data: {} });
  expect(server.status()).toBe(422);
  expect((await server.json()).error.issues.map((i: { message: string }) => i.message)).toEqual(browser);

  // Mapped from upstream, it is ready to run; saved with the child's pinned version.
  await page.getByTestId("sub-inputs").fill('{"topic": "{{nodes.a.output}}"}');
  await page.getByTestId("sub-inputs").press("Tab");
  await expect(page.getByTestId("valid")).toBeVisible();
  await page.getByTestId("save").click();
  await expect(page.getByTestId("version")).toHaveText("version 3");
  const saved = await (await page.request.get(`/api/v1/workflows/${id}`)).json();
  expect(saved.state).toBe("ready");
  const b = saved.definition.nodes.find((n: { key: string }) => n.key === "b");
  expect(b).toMatchObject({ kind: "workflow", workflow_id: childId, version: 1, inputs: { topic: "{{nodes.a.output}}" } });
  expect(errors).toEqual([]);
});

test("a rejected approval is retried from the canvas, and a run is cancelled from it", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  const id = await openNew(page, "Gate", {
    nodes: [
      { key: "gate", kind: "approval", prompt: "go on?", position: { x: 200, y: 40 } },
      { key: "after", kind: "agent", capability: "data_analysis", prompt: "go", position: { x: 200, y: 200 } },
    ],
    edges: [{ from: "gate", to: "after" }],
  });
  const gate = page.locator('.wf-node[data-key="gate"]');
  const after = page.locator('.wf-node[data-key="after"]');

  await page.getByTestId("run").click();
  await expect(gate).toHaveAttribute("data-run-state", "waiting_for_approval");
  await gate.locator("rect").click();
  await page.getByTestId("reject").click();
  await expect(gate).toHaveAttribute("data-run-state", "failed");
  await expect(after).toHaveAttribute("data-run-state", "blocked");
  await expect(page.getByTestId("decision")).toContainText(`rejected by ${admin.username}`);
  await expect(page.getByTestId("run-status")).toHaveText("run failed");
  await expect(page.getByTestId("cancel-run")).toHaveCount(0);

  // Retry asks again; approved this time, the run completes.
  await page.getByTestId("retry").click();
  await expect(gate).toHaveAttribute("data-run-state", "waiting_for_approval");
  await page.getByTestId("approve").click();
  await expect(after).toHaveAttribute("data-run-state", "completed");
  await expect(page.getByTestId("run-status")).toHaveText("run completed");

  // A second run is cancelled while its approval waits.
  await page.getByTestId("run").click();
  await expect(page.getByTestId("run-status")).toHaveText("run in_progress");
  await expect(gate).toHaveAttribute("data-run-state", "waiting_for_approval");
  await page.getByTestId("cancel-run").click();
  await expect(page.getByTestId("run-status")).toHaveText("run cancelled");
  const runs = await (await page.request.get(`/api/v1/workflows/${id}/runs`)).json();
  expect((runs.items ?? runs).map((r: { status: string }) => r.status).sort()).toEqual(["cancelled", "completed"]);
  expect(errors).toEqual([]);
});
