// The official OpenAI Node SDK against vdgx-bridge's /v1/videos, unchanged client code:
// create (multipart, as the SDK sends it), poll, list, download, delete.
//   node openai_sdk.mjs BASE_URL OUT.mp4
import OpenAI from "openai";
import { writeFile } from "node:fs/promises";

const [baseURL, out] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused-on-loopback", maxRetries: 0, timeout: 20000 });
const fail = (msg) => { console.error("FAIL: " + msg); process.exit(1); };

// models.list / models.retrieve: the models the broker knows.
const models = [];
for await (const m of client.models.list()) models.push(m.id);
if (!models.includes("testgen")) fail("models.list: " + JSON.stringify(models));
const model = await client.models.retrieve("testgen");
if (model.id !== "testgen" || model.object !== "model") fail("models.retrieve: " + JSON.stringify(model));

// A first video, so that listing one per page has to follow the cursor.
const other = await client.videos.create({ model: "testgen", prompt: "a second video", seconds: "1" });
let video = await client.videos.create({ model: "testgen", prompt: "a lighthouse at dusk", seconds: "1", size: "64x48" });
if (video.object !== "video" || !video.id) fail("create: " + JSON.stringify(video));
const t0 = Date.now();
while (video.status === "queued" || video.status === "in_progress") {
  if (Date.now() - t0 > 60000) fail("timed out polling");
  await new Promise((r) => setTimeout(r, 100));
  video = await client.videos.retrieve(video.id);
}
if (video.status !== "completed" || video.progress !== 100) fail("final: " + JSON.stringify(video));

const seen = [];
for await (const v of client.videos.list({ limit: 1 })) seen.push(v.id);   // pages via `after`
if (!seen.includes(video.id) || !seen.includes(other.id) || seen.length !== 2)
  fail("list (1 per page, following the cursor): " + seen);

const content = await client.videos.downloadContent(video.id, { variant: "video" });
const bytes = Buffer.from(await content.arrayBuffer());
if (bytes.length < 100 || bytes.subarray(4, 8).toString() !== "ftyp") fail("not an MP4");
await writeFile(out, bytes);
const thumb = Buffer.from(await (await client.videos.downloadContent(video.id, { variant: "thumbnail" })).arrayBuffer());
if (thumb[0] !== 0xff || thumb[1] !== 0xd8) fail("thumbnail is not a JPEG");

const del = await client.videos.delete(video.id);
if (!del.deleted || del.id !== video.id || del.object !== "video.deleted") fail("delete: " + JSON.stringify(del));
try {
  await client.videos.retrieve(video.id);
  fail("retrieve after delete succeeded");
} catch (e) {
  if (!(e instanceof OpenAI.NotFoundError)) fail("expected NotFoundError, got " + e);
}
console.log(`openai SDK: models.list (${models.length}), created, polled, listed (${seen.length}), downloaded ${bytes.length} bytes + a ${thumb.length}-byte thumbnail, deleted ${video.id}`);
