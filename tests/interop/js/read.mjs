// Reads every message of a super stream's partitions from the first offset with the official
// JavaScript stream client, and prints one JSON line per message:
// {"stream", "offset", "properties" (application properties), "content_type", "body"}.
// Usage: node read.mjs SUPER_STREAM COUNT (stops once COUNT messages arrived, or fails after
// TIMEOUT_MS). Connection: see connection.mjs.
import { Offset } from "rabbitmq-stream-js-client";
import { connectFromEnv } from "./connection.mjs";

const [superStream, countText] = process.argv.slice(2);
const expected = Number(countText);
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 30000);

const client = await connectFromEnv();
const rows = [];
let done;
const arrived = new Promise((resolve) => (done = resolve));
const partitions = await client.queryPartitions({ superStream });
for (const stream of partitions) {
  await client.declareConsumer({ stream, offset: Offset.first() }, (message) => {
    rows.push({
      stream,
      offset: Number(message.offset),
      properties: message.applicationProperties ?? {},
      content_type: message.messageProperties?.contentType ?? null,
      body: message.content.toString("utf8"),
    });
    if (rows.length >= expected) done();
  });
}
const timer = setTimeout(() => done(), timeoutMs);
await arrived;
clearTimeout(timer);
await client.close();
const text = rows.map((row) => JSON.stringify(row) + "\n").join("");
// exit only once stdout took all of it (a pipe is written asynchronously)
process.stdout.write(text, () => process.exit(rows.length >= expected ? 0 : 3));
