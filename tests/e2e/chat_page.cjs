// Drives the chat page in headless Chromium: a Korean and an English message, each acked and
// answered with product cards, then a reload that must show the same conversation.
// Usage: NODE_PATH=<dir with playwright-core> node chat_page.cjs <base url> <chromium path>
"use strict";
const { chromium } = require("playwright-core");

const [baseUrl, executablePath] = process.argv.slice(2);
const TIMEOUT_MS = 90_000;

async function main() {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const problems = [];
  try {
    // A phone-sized viewport: the layout the page is written for.
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.push("console: " + msg.text());
    });
    page.on("pageerror", (err) => problems.push("page error: " + err.message));

    await page.goto(baseUrl + "/");
    await page.waitForSelector('#status[data-state="online"]');

    const conversation = [];
    for (const [n, text] of [
      [1, "10만원 이하 따뜻한 겨울 패딩 추천해 주세요"],
      [2, "Show me a white t-shirt"],
    ]) {
      await page.fill("#text", text);
      await page.click("#send");
      // Locator waits, not waitForFunction: the page's CSP forbids eval, which that uses.
      await page.locator('.msg.user[data-state="acked"]').nth(n - 1).waitFor();
      const reply = page.locator(".msg.assistant").nth(n - 1);
      await reply.waitFor();
      const cards = await reply.locator(".product-card").count();
      const firstCard = cards > 0 ? await reply.locator(".product-card .title").first().textContent() : null;
      const price = cards > 0 ? await reply.locator(".product-card .price").first().textContent() : null;
      conversation.push({ text, reply: (await reply.textContent()).slice(0, 200), cards, firstCard, price });
      if (cards === 0) problems.push(`reply ${n} has no product cards`);
    }

    await page.reload();
    await page.waitForSelector('#status[data-state="online"]');
    await page.locator(".msg.assistant").nth(1).waitFor();
    const history = {
      user: await page.locator(".msg.user").count(),
      assistant: await page.locator(".msg.assistant").count(),
      cards: await page.locator(".product-card").count(),
    };
    if (history.user !== 2 || history.assistant !== 2) {
      problems.push("history after reload: " + JSON.stringify(history));
    }
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    if (overflow) problems.push("the page scrolls sideways on a phone");
    console.log(JSON.stringify({ conversation, history, problems }));
  } finally {
    await browser.close();
  }
  process.exit(problems.length === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(2);
});
