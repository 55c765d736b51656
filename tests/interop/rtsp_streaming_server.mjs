// rtsp-streaming-server (npm), a relay, for retina-record's interop tests (tests/servers.rs).
//
// Usage: node rtsp_streaming_server.mjs
//
// Listens on 127.0.0.1 on two free ports, one for publishers (ANNOUNCE/RECORD: ffmpeg's RTSP
// muxer) and one for clients (DESCRIBE/SETUP/PLAY), and prints "PUBLISH_PORT CLIENT_PORT" on
// stdout once both accept connections. Runs until killed. Its RTP ports (UDP: the relay
// supports no TCP) come from a free range chosen here.
import dgram from "node:dgram";
import fs from "node:fs";
import os from "node:os";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const RtspServer = require("rtsp-streaming-server").default;

// The relay's RTP/RTCP ports: a block of PAIRS even/odd pairs below Linux's ephemeral ports
// (32768 and up, which other sockets get without asking). Tests run in parallel, each with its
// own relay: a block is claimed with a file of its own, created exclusively and holding the
// claimant's pid (a dead claimant's block is taken over), and each port is checked free (bound
// and released) too. Publishing two streams and reading them a few times at once takes under
// ten pairs.
const PAIRS = 16;
const BLOCKS = Math.floor(12000 / (2 * PAIRS));

async function bindable(port) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket("udp4");
    socket.once("error", () => resolve(false));
    socket.bind(port, () => socket.close(() => resolve(true)));
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

// Claims block `n`: true if it is now this process's.
function claim(n) {
  const path = `${os.tmpdir()}/retina-record-relay-ports-${n}`;
  try {
    fs.writeFileSync(path, `${process.pid}`, { flag: "wx" });
    return true;
  } catch {
    const holder = Number.parseInt(fs.readFileSync(path, "utf8"), 10);
    if (Number.isInteger(holder) && alive(holder)) return false;
    fs.rmSync(path, { force: true });
    try {
      fs.writeFileSync(path, `${process.pid}`, { flag: "wx" });
      return true;
    } catch {
      return false;
    }
  }
}

async function freeRange() {
  const first = Math.floor(Math.random() * BLOCKS);
  for (let i = 0; i < BLOCKS; i++) {
    const n = (first + i) % BLOCKS;
    if (!claim(n)) continue;
    const base = 20000 + 2 * PAIRS * n;
    let free = true;
    for (let p = base; p < base + 2 * PAIRS && free; p++) {
      free = await bindable(p);
    }
    if (free) return base;
  }
  throw new Error("no free UDP port range");
}

async function listen(server) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server.address().port));
  });
}

const rtpPortStart = await freeRange();
const relay = new RtspServer({
  serverPort: 0,
  clientPort: 0,
  rtpPortStart,
  rtpPortCount: 2 * PAIRS,
});
// What relay.start() does, on loopback and on free ports.
const publishPort = await listen(relay.PublishServer.server);
const clientPort = await listen(relay.ClientServer.server);
console.log(`${publishPort} ${clientPort}`);
// The test reads only that line: whatever the relay logs later goes to stderr.
console.log = console.error;
