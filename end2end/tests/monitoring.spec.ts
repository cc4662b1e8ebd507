import { type Page } from "@playwright/test";
import { expect, logIn, test, watchConsole } from "./helpers";

/** Submits a task through the REST API with the page's session (another "tab" of the user). */
async function submitTask(page: Page, description: string): Promise<string> {
  const res = await page.request.post("/api/v1/tasks", { data: { description } });
  expect(res.status()).toBe(201);
  return (await res.json()).id;
}

test("the overview counts the fleet's work live, with charts and recent events", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  await expect(page.getByRole("status")).toHaveText("● Live");
  const completed = page.getByTestId("work-completed");
  await expect(completed).toHaveText(/^\d+$/);
  const before = Number(await completed.textContent());
  await expect(page.getByTestId("fleet-idle")).toHaveText(/^\d+$/);
  await expect(page.locator("figure.chart")).toHaveCount(3);

  await submitTask(page, "Scrape the pricing website, then analyse the trends.");
  // Two subtasks complete; the figure follows without a reload.
  await expect(completed).toHaveText(String(before + 2), { timeout: 25_000 });
  await expect(page.locator("table.events").getByText("task.completed").first()).toBeVisible();
  await expect(
    page.getByRole("figure", { name: "Subtasks per minute" }).getByTestId("chart-summary"),
  ).toContainText("completed: latest");
  expect(errors).toEqual([]);
});

test("an agent's detail page shows its health, charts over a chosen range and its events", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  await page.getByRole("link", { name: "Agents" }).click();
  const card = page.getByRole("article", { name: "Agent agent-1" });
  await expect(card.getByTestId("health")).toHaveText("Responsive");
  await expect(card.getByText(/Last heartbeat/)).toBeVisible();
  await card.getByRole("link", { name: "agent-1" }).click();
  await expect(page).toHaveURL(/\/agents\/[0-9a-f-]{36}$/);
  await expect(page.getByRole("heading", { name: "agent-1" })).toBeVisible();
  await expect(page.locator("figure.chart")).toHaveCount(3);
  await expect(page.getByRole("figure", { name: "Tokens per minute" }).locator("svg")).toBeVisible();
  await page.getByRole("link", { name: "Last day" }).click();
  await expect(page).toHaveURL(/range=day$/);
  await expect(page.getByRole("link", { name: "Last day" })).toHaveAttribute("aria-current", "true");
  await expect(page.locator("figure.chart")).toHaveCount(3);
  expect(errors).toEqual([]);
});

test("the events page tails new events that match its filters", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  await page.getByRole("link", { name: "Events", exact: true }).click();
  await expect(page.getByRole("status")).toHaveText("● Live");
  await page.getByLabel("Type").fill("task");
  await page.getByLabel("Type").press("Tab");
  await page.waitForLoadState("networkidle");
  const tail = page.getByTestId("live-tail");

  const id = await submitTask(page, "Query the sales database, then chart the results.");
  await expect(tail.locator("tr", { hasText: "task.submitted" }).filter({ hasText: id })).toBeVisible();
  await expect(tail.locator("tr", { hasText: "task.completed" }).filter({ hasText: id })).toBeVisible({
    timeout: 25_000,
  });
  // The filter holds for the tail too: subtask events are not tasks' own.
  await expect(tail.locator("tr", { hasText: "subtask." })).toHaveCount(0);

  await page.getByLabel("Live tail").uncheck();
  await expect(tail.locator("tr")).toHaveCount(0);
  expect(errors).toEqual([]);
});
