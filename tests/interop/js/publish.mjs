// Publishes ticks to a super stream with the official JavaScript stream client's super stream
// publisher, routed by its own hash of the symbol (its default routing strategy), each as our
// wire format has it: the JSON body, content type application/json, application properties
// symbol and schema_version. Reads {"symbol", "body"} JSON lines on stdin; prints {"sent": N}.
// Usage: node publish.mjs SUPER_STREAM. Connection: see connection.mjs.
import { connectFromEnv } from "./connection.mjs";
import { createInterface } from "node:readline";

const [superStream] = process.argv.slice(2);
const client = await connectFromEnv();
const publisher = await client.declareSuperStreamPublisher(
  { superStream },
  (_content, options) => options.applicationProperties.symbol,
);
let sent = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { symbol, body } = JSON.parse(line);
  await publisher.send(Buffer.from(body, "utf8"), {
    messageProperties: { contentType: "application/json" },
    applicationProperties: { symbol, schema_version: "1" },
  });
  sent += 1;
}
await publisher.close();
await client.close();
process.stdout.write(JSON.stringify({ sent }) + "\n");
