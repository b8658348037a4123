// A lobby built on the SDK: a chat kept in the channel's history (so a page opened late,
// or back from a lost connection, shows what was said) and who is there (presence, with
// join/leave/status events). Open as index.html?hub=ws://127.0.0.1:8080/ws&token=<jwt>.
import { RingHubClient, RingHubError } from "../dist/index.js";

const params = new URLSearchParams(location.search);
const hub = params.get("hub") ?? "ws://127.0.0.1:8080/ws";
const token = params.get("token");
const room = params.get("room") ?? "main";
const $ = (id) => document.getElementById(id);

if (!token) {
  const form = $("login");
  form.hidden = false;
  form.hub.value = hub;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.search = new URLSearchParams({ hub: form.hub.value, token: form.token.value.trim(), room }).toString();
  });
} else {
  join();
}

function join() {
  $("lobby").hidden = false;
  $("room").textContent = `#${room}`;
  const client = new RingHubClient({ url: hub, token, clientKind: "web" });
  const lobby = client.subscribe(`lobby:${room}`);
  /** Chat lines by offset: history and live messages overlap, each is shown once. */
  const lines = new Map();
  /** Who is here: user → status. */
  const players = new Map();

  client.on("state", ({ state }) => {
    $("state").textContent = state;
    $("state").className = `state ${state}`;
  });
  client.on("connected", (s) => {
    $("me").textContent = s.user;
    $("instance").textContent = s.instance;
  });
  client.on("disconnected", ({ code, reason }) => notice(`Disconnected for good (${code} ${reason}). Reload with a new token.`));

  lobby.on("subscribed", async (e) => {
    if (e.recovered === false) notice("Some messages were missed while away; the chat was reloaded.");
    if (e.recovered !== true) await loadHistory();
    await loadPresence();
  });
  lobby.on("message", (m) => addLine(m.offset, m.from, m.data, Date.now()));
  lobby.on("join", (e) => {
    players.set(e.user, players.get(e.user) ?? "online");
    renderPlayers();
    system(`${e.user} joined`);
  });
  lobby.on("leave", (e) => {
    players.delete(e.user);
    renderPlayers();
    system(`${e.user} left`);
  });
  lobby.on("status", (e) => {
    players.set(e.user, e.status);
    renderPlayers();
  });
  lobby.on("error", (e) => notice(`The lobby refused us: ${e.code} ${e.message}`));

  async function loadHistory() {
    const { publications } = await lobby.history({ limit: 50 });
    for (const p of publications) addLine(p.offset, p.from, p.data, p.ts, true);
  }

  async function loadPresence() {
    players.clear();
    for (const u of await lobby.presence()) players.set(u.user, u.status);
    renderPlayers();
  }

  $("say").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    try {
      await lobby.publish({ text });
      $("text").value = "";
    } catch (err) {
      const wait = err instanceof RingHubError && err.retryAfterMs ? ` (try again in ${err.retryAfterMs} ms)` : "";
      notice(`Not sent: ${err.code ?? ""} ${err.message}${wait}`);
    }
  });
  $("away").addEventListener("change", (e) => client.setStatus(e.target.checked ? "away" : "online").catch(() => {}));

  function addLine(offset, from, data, ts, old = false) {
    if (offset !== undefined && lines.has(offset)) return;
    const li = document.createElement("li");
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const who = document.createElement("span");
    who.className = "from";
    who.textContent = from ?? "server";
    li.append(time, who, document.createTextNode(typeof data?.text === "string" ? data.text : JSON.stringify(data)));
    li.dataset.offset = offset ?? "";
    if (offset !== undefined) lines.set(offset, li);
    // Keep the list in offset order (history can arrive after the first live line), and
    // what was said before we came above the joins and leaves seen since.
    const after = [...$("messages").children].find((el) =>
      el.dataset.offset ? Number(el.dataset.offset) > offset : old && el.className === "system",
    );
    $("messages").insertBefore(li, after ?? null);
    li.scrollIntoView({ block: "end" });
  }

  function system(text) {
    const li = document.createElement("li");
    li.className = "system";
    li.textContent = text;
    $("messages").append(li);
  }

  function renderPlayers() {
    const list = $("players");
    list.replaceChildren(
      ...[...players].sort(([a], [b]) => a.localeCompare(b)).map(([user, status]) => {
        const li = document.createElement("li");
        li.textContent = status === "away" ? `${user} (away)` : user;
        if (status === "away") li.className = "away";
        li.dataset.user = user;
        return li;
      }),
    );
    $("count").textContent = `(${players.size})`;
  }

  function notice(text) {
    $("notice").hidden = false;
    $("notice").textContent = text;
  }

  client.connect();
  window.lobby = { client, lobby, players, lines };
}
