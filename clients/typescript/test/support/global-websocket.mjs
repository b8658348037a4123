// Run by test/e2e/node.e2e.test.js in a node with a global WebSocket (Node 22+, or Node 20
// with --experimental-websocket): the SDK needs no WebSocket option there. Prints the ack
// and the message of one publication on a history channel.
import { RingHubClient } from "../../dist/index.js";

const [url, token] = process.argv.slice(2);
const c = new RingHubClient({ url, token });
c.connect();
const sub = c.subscribe("log:global");
await sub.ready;
const message = new Promise((r) => sub.once("message", r));
const ack = await c.publish("log:global", { via: "global WebSocket" });
console.log(JSON.stringify({ ack, data: (await message).data }));
c.close();
