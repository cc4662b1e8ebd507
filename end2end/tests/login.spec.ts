import { admin, expect, logIn, test, watchConsole } from "./helpers";

test("an unauthenticated visitor is sent to the login page", async ({ page }) => {
  await page.goto("/users");
  await expect(page).toHaveURL(/\/login\?next=\/users$/);
  await expect(page.getByRole("button", { name: "Log in" })).toBeVisible();
});

test("a wrong password shows an error and keeps the visitor on the login page", async ({ page }) => {
  await page.goto("/login");
  await page.waitForLoadState("networkidle");
  await page.getByLabel("Username").fill(admin.username);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("alert")).toContainText("wrong username or password");
  await expect(page).toHaveURL(/\/login/);
});

test("log in, see the overview, interact with the hydrated page, log out", async ({ page }) => {
  const errors = watchConsole(page);
  await logIn(page);

  await expect(page.getByTestId("signed-in-user")).toHaveText(admin.username);
  await expect(page.getByTestId("database-status")).toHaveText("Connected");
  await expect(page.getByText(/PostgreSQL \d+/)).toBeVisible();

  // Only a hydrated page reacts to this button: the count lives in a client-side signal.
  await page.waitForLoadState("networkidle");
  const again = page.getByRole("button", { name: "Check again" });
  await again.click();
  await expect(page.getByText("Checked again 1 time")).toBeVisible();
  await again.click();
  await expect(page.getByText("Checked again 2 times")).toBeVisible();

  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=\//);
  expect(errors).toEqual([]);
});

test("an admin creates a member, who cannot see the users page link", async ({ page, browser }) => {
  await logIn(page);
  await page.getByRole("link", { name: "Users" }).click();
  await expect(page.getByRole("heading", { name: "Users" })).toBeVisible();
  const name = `member${Date.now() % 100000}`;
  const form = page.locator("form.inline-form");
  await form.getByLabel("Username").fill(name);
  await form.getByLabel("Password").fill("a long enough password");
  await form.getByRole("button", { name: "Create" }).click();
  await expect(page.getByRole("cell", { name })).toBeVisible();

  const other = await browser.newContext();
  const memberPage = await other.newPage();
  await memberPage.goto("/login");
  await memberPage.getByLabel("Username").fill(name);
  await memberPage.getByLabel("Password").fill("a long enough password");
  await memberPage.getByRole("button", { name: "Log in" }).click();
  await expect(memberPage.getByTestId("signed-in-user")).toHaveText(name);
  await expect(memberPage.getByRole("link", { name: "Users" })).toHaveCount(0);
  await other.close();
});
