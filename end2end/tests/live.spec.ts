import { type APIRequestContext } from "@playwright/test";
import { admin, expect, logIn, test, watchConsole } from "./helpers";

/** Creates a member account through the REST API and returns its credentials. */
async function createMember(request: APIRequestContext) {
  const login = await request.post("/api/v1/session", { data: admin });
  expect(login.ok()).toBeTruthy();
  const member = { username: `watcher${Date.now() % 100000}`, password: "a long enough password" };
  const created = await request.post("/api/v1/users", { data: { ...member, role: "member" } });
  expect(created.status()).toBe(201);
  return member;
}

test("a submitted task's subtasks go queued → running → completed live, without reloading", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);
  await page.getByRole("link", { name: "Tasks" }).click();
  await expect(page.getByRole("status")).toHaveText("● Live");
  await page
    .getByLabel("Describe the work")
    .fill("Scrape the pricing website. Query the sales database, then analyse the trends.");
  await page.getByRole("button", { name: "Submit task" }).click();
  await expect(page).toHaveURL(/\/tasks\/[0-9a-f-]{36}$/);
  await expect(page.getByRole("status")).toHaveText("● Live");

  // Each step arrives over the event stream; nothing here reloads or clicks Refresh.
  const s3 = page.locator('tr[data-subtask="s3"] .badge');
  const s3Node = page.locator('g.dag-node[data-key="s3"]');
  await expect(s3).toHaveText("queued");
  // The DAG view draws the plan: three nodes, one dependency, coloured by state.
  await expect(page.locator("g.dag-node")).toHaveCount(3);
  await expect(page.locator("line.dag-edge")).toHaveCount(1);
  await expect(s3Node).toHaveAttribute("data-status", "queued");
  await expect(page.locator('tr[data-subtask="s1"] .badge')).toHaveText("running");
  await expect(s3).toHaveText("running");
  await expect(s3).toHaveText("completed");
  await expect(s3Node).toHaveAttribute("data-status", "completed");
  await expect(page.getByText("3/3 subtasks")).toBeVisible();
  await expect(page.getByRole("heading", { name: "Result" })).toBeVisible();
  expect(errors).toEqual([]);
});

test("pausing an agent shows up live for another user", async ({ page, browser, request }) => {
  const member = await createMember(request);
  const watcherContext = await browser.newContext();
  const watcher = await watcherContext.newPage();
  await watcher.goto("/login");
  await watcher.getByLabel("Username").fill(member.username);
  await watcher.getByLabel("Password").fill(member.password);
  await watcher.getByRole("button", { name: "Log in" }).click();
  await watcher.getByRole("link", { name: "Agents" }).click();
  await expect(watcher.getByRole("status")).toHaveText("● Live");
  const watched = watcher.getByRole("article", { name: "Agent agent-5" });
  await expect(watched.locator(".badge")).toHaveText(/idle|working/);

  await logIn(page);
  await page.getByRole("link", { name: "Agents" }).click();
  await page.waitForLoadState("networkidle");
  const card = page.getByRole("article", { name: "Agent agent-5" });
  await card.getByRole("button", { name: "Pause" }).click();
  await expect(watched.locator(".badge")).toHaveText("paused");
  await card.getByRole("button", { name: "Resume" }).click();
  await expect(watched.locator(".badge")).toHaveText(/idle|working/);
  await watcherContext.close();
});

test("a failing task raises a toast wherever the user is", async ({ page }) => {
  await logIn(page);
  await page.getByRole("link", { name: "Tasks" }).click();
  await expect(page.getByRole("status")).toHaveText("● Live");
  await page.getByLabel("Describe the work").fill("Query the sales table [fail]. Then chart the results.");
  await page.getByRole("button", { name: "Submit task" }).click();
  await expect(page).toHaveURL(/\/tasks\/[0-9a-f-]{36}$/);
  // Move away: the toast follows the user to any page.
  await page.getByRole("link", { name: "Overview" }).click();
  await expect(page.getByRole("alert").filter({ hasText: /^Task failed/ })).toBeVisible({ timeout: 25_000 });
  await page.getByRole("alert").filter({ hasText: /^Task failed/ }).getByRole("button", { name: "Dismiss" }).click();
  await expect(page.getByRole("alert").filter({ hasText: /^Task failed/ })).toHaveCount(0);
});
