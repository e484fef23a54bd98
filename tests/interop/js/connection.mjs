// The connection both scripts make: STREAM_HOST, STREAM_PORT, STREAM_USER, STREAM_PASSWORD
// (defaults: the compose cluster's first node and user).
import { connect } from "rabbitmq-stream-js-client";

export function connectFromEnv() {
  return connect({
    hostname: process.env.STREAM_HOST ?? "localhost",
    port: Number(process.env.STREAM_PORT ?? 5552),
    username: process.env.STREAM_USER ?? "superticks",
    password: process.env.STREAM_PASSWORD ?? "superticks",
    vhost: "/",
  });
}
