import { expect, logIn, test, watchConsole } from "./helpers";

test("import an export, open a past version, export it, and open a run from the run history", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  await page.getByRole("link", { name: "Workflows" }).click();
  await page.waitForLoadState("networkidle");
  const definition = {
    nodes: [{ key: "only", kind: "agent", capability: "data_analysis", prompt: "first words", position: { x: 120, y: 80 } }],
  };

  // An export of an unknown format version is refused with the reason; a good one opens.
  await page.getByTestId("import").locator("summary").click();
  await page.getByTestId("import-text").fill(JSON.stringify({ schema_version: 2, name: "Future", definition }));
  await page.getByRole("button", { name: "Import" }).click();
  await expect(page.getByTestId("import")).toContainText("schema_version 2 is not supported");
  await page.getByTestId("import-text").fill(JSON.stringify({ schema_version: 1, name: "Imported", definition }));
  await page.getByRole("button", { name: "Import" }).click();
  await expect(page).toHaveURL(/\/workflows\/[0-9a-f-]{36}$/);
  const id = page.url().split("/").pop();
  await expect(page.getByRole("heading", { name: "Imported" })).toBeVisible();

  // A second version saved over REST; the history opens the first.
  definition.nodes[0].prompt = "second words";
  const saved = await page.request.put(`/api/v1/workflows/${id}`, { data: { base_version: 1, definition, message: "reworded" } });
  expect(saved.status()).toBe(200);
  await page.reload();
  await expect(page.getByTestId("version")).toHaveText("version 2");
  await page.getByTestId("history").locator("summary").click();
  await expect(page.getByTestId("history")).toContainText("reworded");
  await page.getByTestId("version-1").click();
  await expect(page).toHaveURL(new RegExp(`/workflows/${id}\\?version=1$`));
  await expect(page.getByTestId("version")).toHaveText("version 1");
  await expect(page.getByTestId("past-version")).toHaveText("a past version: saving makes it version 3");
  await page.locator('.wf-node[data-key="only"] rect').click();
  await expect(page.getByTestId("prompt")).toHaveValue("first words");
  const href = await page.getByTestId("export").getAttribute("href");
  expect(href).toBe(`/api/v1/workflows/${id}/export?version=1`);
  const exported = await (await page.request.get(href!)).json();
  expect(exported.schema_version).toBe(1);
  expect(exported.definition.nodes[0].prompt).toBe("first words");

  // A run, found in the history by its status and opened on the canvas.
  const started = await page.request.post(`/api/v1/workflows/${id}/runs`, { data: { inputs: {} } });
  expect(started.status()).toBe(201);
  const run = (await started.json()).id;
  await expect
    .poll(async () => (await (await page.request.get(`/api/v1/runs/${run}`)).json()).status)
    .toBe("completed");
  await page.getByTestId("runs-link").click();
  await expect(page).toHaveURL(new RegExp(`/workflows/${id}/runs$`));
  await expect(page.getByTestId("runs").locator("tbody tr")).toHaveCount(1);
  await page.getByTestId("status-filter").selectOption("failed");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.getByText("No runs.")).toBeVisible();
  await page.getByTestId("status-filter").selectOption("completed");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.getByTestId("runs").locator("tbody tr")).toHaveCount(1);
  await page.getByTestId("runs").locator("tbody a").click();
  await expect(page).toHaveURL(new RegExp(`/workflows/${id}\\?version=2&run=${run}$`));
  await expect(page.locator('.wf-node[data-key="only"]')).toHaveAttribute("data-run-state", "completed");
  await page.locator('.wf-node[data-key="only"] rect').click();
  await expect(page.getByTestId("node-output")).toHaveText("[simulated] done: second words");
  // The one error is the refused import's answer.
  expect(errors).toEqual(["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]);
});
