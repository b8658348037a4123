// The frames docs/protocol.md shows, one a line, typed as the SDK's frame types: `tsc`
// (tsconfig.types.json) refuses one that disagrees with src/protocol.ts, and
// test/unit/protocol-doc.test.js fails when the document shows a frame missing here.
import type { ClientFrame, ServerFrame } from "../../src/protocol.js";

export const serverFrames: ServerFrame[] = [
  {"type":"welcome","conn":"100000000000001","user":"alice","instance":"hub-1-3fa2c1","shard":1,"ping_interval_ms":25000,"expires_at":1767225600},
  {"id":7,"type":"error","code":"forbidden","message":"not permitted on this channel"},
  {"id":1,"type":"subscribed","channel":"table:42"},
  {"id":1,"type":"subscribed","channel":"log:1","offset":17,"epoch":"x9f","recovered":true},
  {"id":2,"type":"unsubscribed","channel":"table:42"},
  {"id":3,"type":"ack"},
  {"id":3,"type":"ack","offset":18},
  {"id":4,"type":"presence","channel":"chat:lobby","users":[{"user":"u1","conns":2,"status":"online","info":{}}]},
  {"id":5,"type":"history","channel":"log:1","epoch":"x9f","publications":[{"offset":16,"from":"u1","ts":1767225600123,"data":{}}]},
  {"id":6,"type":"refreshed","expires_at":1767229200},
  {"id":7,"type":"result","data":{}},
  {"id":8,"type":"pong"},
  {"type":"unsubscribed","channel":"log:1","reason":"recovery_failed"},
  {"type":"message","channel":"table:42","data":{"card":"A♠"},"from":"demo"},
  {"type":"message","channel":"log:1","data":{},"offset":18},
  {"type":"message","channel":"table:42","data":"{\"table\":42,\"pot\":10,\"turn\":\"ann\",\"seats\":[{\"user\":\"ann\",\"chips\":900},{\"user\":\"bob\",\"chips\":1200},{\"user\":\"cyd\",\"chips\":450}]}","delta":false},
  {"type":"message","channel":"table:42","data":"1z\nI@0,E:20,\"turn\":\"bob1U@W,281dXW;","delta":true},
  {"type":"direct","data":{},"from":"u1"},
  {"type":"broadcast","data":{}},
  {"type":"join","channel":"chat:lobby","user":"u1","info":{}},
  {"type":"leave","channel":"chat:lobby","user":"u1","info":{}},
  {"type":"status","channel":"chat:lobby","user":"u1","status":"away"},
  {"type":"expiring","expires_at":1767225600},
  {"type":"reconnect","after_ms":1200},
  {"id":9,"type":"error","code":"rate_limited","message":"slow down","retry_after_ms":250},
];

export const clientFrames: ClientFrame[] = [
  {"type":"auth","token":"<jwt>"},
  {"id":1,"type":"subscribe","channel":"table:42"},
  {"type":"subscribe","channel":"table:42","delta":"fossil"},
  {"type":"subscribe","channel":"log:1","since":{"offset":17,"epoch":"x9f"}},
  {"id":2,"type":"publish","channel":"table:42","data":{"card":"A♠"}},
  {"type":"history","channel":"log:1","since":17,"limit":50},
  {"id":3,"type":"unsubscribe","channel":"table:42"},
  {"id":4,"type":"send","user":"u1","data":{}},
  {"id":5,"type":"presence","channel":"chat:lobby"},
  {"id":6,"type":"status","status":"away"},
  {"id":7,"type":"refresh","token":"<jwt>"},
  {"id":8,"type":"rpc","method":"game.move","data":{"x":1}},
  {"id":9,"type":"event","event":"chat.message.send","data":{},"correlation_id":"c-1"},
  {"id":10,"type":"ping"},
];
