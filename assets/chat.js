// The chat page: a demo member token, one WebSocket with reconnect (exponential backoff, then
// resume with history), messages and product cards. Text is only ever set with textContent.
"use strict";
(() => {
  const MEMBER_KEY = "convrec.member_id";
  const CONVERSATION_KEY = "convrec.conversation_id";
  const MAX_BACKOFF_MS = 15000;

  const list = document.getElementById("messages");
  const statusEl = document.getElementById("status");
  const typingEl = document.getElementById("typing");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");

  let socket = null;
  let backoffMs = 500;
  // client_id -> { el, text }: sent and not yet answered. After a reconnect they are sent
  // again with the same client_id: the server answers each exactly once (a stored reply comes
  // back as it was), so nothing is lost or doubled by a dropped connection or a crash.
  const pending = new Map();

  function setStatus(state, label) {
    statusEl.dataset.state = state;
    statusEl.textContent = label;
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function scrollDown() { list.scrollTop = list.scrollHeight; }

  function addMessage(role, text) {
    const el = document.createElement("div");
    el.className = "msg " + role;
    el.textContent = text;
    list.appendChild(el);
    scrollDown();
    return el;
  }

  function productCard(p) {
    const card = document.createElement("article");
    card.className = "product-card";
    card.dataset.productId = p.id;
    // Nothing met the request: the nearest products, marked (their explanation says how).
    if (Array.isArray(p.outside_request) && p.outside_request.length > 0) {
      card.classList.add("outside-request");
    }
    const image = document.createElement("div");
    image.className = "image";
    image.setAttribute("aria-hidden", "true");
    image.textContent = (p.title || "?").trim().charAt(0);
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = p.title;
    const price = document.createElement("div");
    price.className = "price";
    price.textContent = p.price_display || "가격 문의";
    const stock = document.createElement("div");
    stock.className = "stock";
    stock.textContent = p.stock > 0 ? "재고 " + p.stock + "개" : "품절";
    const why = document.createElement("div");
    why.className = "why";
    why.textContent = p.explanation || "";
    card.append(image, title, price, stock, why);
    return card;
  }

  function addReply(text, products) {
    const el = addMessage("assistant", text);
    if (Array.isArray(products) && products.length > 0) {
      const grid = document.createElement("div");
      grid.className = "products";
      products.forEach((p) => grid.appendChild(productCard(p)));
      el.appendChild(grid);
    }
    scrollDown();
  }

  function showHistory(frame) {
    list.replaceChildren();
    localStorage.setItem(CONVERSATION_KEY, frame.conversation_id);
    const answered = new Set();
    const stored = new Map(); // client_id -> element
    for (const m of frame.messages) {
      if (m.role === "user") {
        const el = addMessage("user", m.text);
        el.dataset.state = "acked";
        el.dataset.messageId = m.id;
        if (m.client_id) stored.set(m.client_id, el);
      } else {
        addReply(m.text, m.products);
        if (m.in_reply_to) answered.add(m.in_reply_to);
      }
    }
    for (const [clientId, p] of pending) {
      const el = stored.get(clientId);
      if (el && answered.has(el.dataset.messageId)) { pending.delete(clientId); continue; }
      p.el = el || addMessage("user", p.text);
      sendMessage(clientId, p.text);
    }
  }

  function sendMessage(clientId, text) {
    const frame = { type: "message", text, client_id: clientId };
    const conversation = localStorage.getItem(CONVERSATION_KEY);
    if (conversation) frame.conversation_id = conversation;
    socket.send(JSON.stringify(frame));
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "ack": {
        localStorage.setItem(CONVERSATION_KEY, frame.conversation_id);
        const p = pending.get(frame.client_id);
        if (p) { p.el.dataset.state = "acked"; p.el.dataset.messageId = frame.message_id; }
        break;
      }
      case "typing": typingEl.hidden = false; break;
      case "reply":
        typingEl.hidden = true;
        pending.delete(frame.client_id);
        addReply(frame.text, frame.products);
        break;
      case "history": showHistory(frame); break;
      case "error": {
        typingEl.hidden = true;
        const p = frame.client_id && pending.get(frame.client_id);
        if (p) { p.el.dataset.state = "failed"; pending.delete(frame.client_id); }
        if (frame.code === "not_found" || frame.code === "forbidden") {
          localStorage.removeItem(CONVERSATION_KEY);
        }
        addMessage("system", frame.message);
        break;
      }
      case "pong": break;
      default: break;
    }
  }

  async function demoToken() {
    const memberId = localStorage.getItem(MEMBER_KEY);
    const response = await fetch("/api/demo/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(memberId ? { member_id: memberId } : {}),
    });
    if (!response.ok) throw new Error("demo token: HTTP " + response.status);
    const body = await response.json();
    localStorage.setItem(MEMBER_KEY, body.member_id);
    return body.token;
  }

  function reconnectLater() {
    setStatus("reconnecting", "다시 연결 중… (" + Math.round(backoffMs / 1000) + "초)");
    const delay = backoffMs * (0.75 + Math.random() * 0.5);
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    setTimeout(connect, delay);
  }

  async function connect() {
    let token;
    try {
      token = await demoToken();
    } catch (e) {
      return reconnectLater();
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams({ token });
    const conversation = localStorage.getItem(CONVERSATION_KEY);
    if (conversation) params.set("conversation", conversation);
    const ws = new WebSocket(scheme + "//" + location.host + "/ws?" + params.toString());
    let opened = false;
    ws.onopen = () => {
      opened = true;
      socket = ws;
      backoffMs = 500;
      setStatus("online", "연결됨");
      // With a conversation the history frame comes first and resends what is pending.
      if (!conversation) for (const [clientId, p] of pending) sendMessage(clientId, p.text);
    };
    ws.onmessage = (event) => {
      try { onFrame(JSON.parse(event.data)); } catch (e) { /* not ours */ }
    };
    ws.onclose = () => {
      if (socket === ws) socket = null;
      // A resume refused at the upgrade (conversation gone): start afresh next time.
      if (!opened && conversation) localStorage.removeItem(CONVERSATION_KEY);
      reconnectLater();
    };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      addMessage("system", "연결이 끊겼어요. 다시 연결되면 보내 주세요.");
      return;
    }
    const clientId = newClientId();
    const el = addMessage("user", text);
    el.dataset.state = "pending";
    pending.set(clientId, { el, text });
    sendMessage(clientId, text);
    input.value = "";
  });

  document.getElementById("new-conversation").addEventListener("click", () => {
    localStorage.removeItem(CONVERSATION_KEY);
    list.replaceChildren();
    if (socket) socket.close(); // reconnects without a conversation
  });

  setStatus("connecting", "연결 중…");
  connect();
})();
