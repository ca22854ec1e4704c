// Image-to-video through the official OpenAI Node SDK, unchanged client code: videos.create
// with input_reference as an uploaded file (the SDK sends multipart), poll, download; then a
// corrupt image, refused with a 4xx that names input_reference.
//   node openai_sdk_i2v.mjs BASE_URL MODEL IMAGE.png OUT.mp4 [SIZE] [EXTRA_JSON]
// EXTRA_JSON: more body fields (the bridge takes frames, steps, ... beside OpenAI's).
import OpenAI, { toFile } from "openai";
import { readFile, writeFile } from "node:fs/promises";

const [baseURL, model, imagePath, out, size, extra] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused-on-loopback", maxRetries: 0, timeout: 120000 });
const fail = (msg) => { console.error("FAIL: " + msg); process.exit(1); };

const image = await readFile(imagePath);
const more = extra ? JSON.parse(extra) : {};
const body = { model, prompt: "the picture comes alive", ...("frames" in more ? {} : { seconds: "1" }),
               input_reference: await toFile(image, "frame.png", { type: "image/png" }),
               ...(size ? { size } : {}), ...more };
let video = await client.videos.create(body);
if (video.object !== "video" || !video.id) fail("create: " + JSON.stringify(video));
const t0 = Date.now();
while (video.status === "queued" || video.status === "in_progress") {
  if (Date.now() - t0 > 240000) fail("timed out polling");
  await new Promise((r) => setTimeout(r, 100));
  video = await client.videos.retrieve(video.id);
}
if (video.status !== "completed") fail("final: " + JSON.stringify(video));
const content = await client.videos.downloadContent(video.id, { variant: "video" });
const bytes = Buffer.from(await content.arrayBuffer());
if (bytes.length < 100 || bytes.subarray(4, 8).toString() !== "ftyp") fail("not an MP4");
await writeFile(out, bytes);

// A corrupt image (the PNG cut in half): a 4xx naming the field, no video made.
const before = [];
for await (const v of client.videos.list({ limit: 100 })) before.push(v.id);
try {
  await client.videos.create({ model, prompt: "refused",
                               input_reference: await toFile(image.subarray(0, image.length >> 1), "half.png", { type: "image/png" }) });
  fail("a corrupt image was accepted");
} catch (e) {
  if (!(e instanceof OpenAI.APIError) || e.status !== 422 || !JSON.stringify(e.error).includes("input_reference"))
    fail("expected a 422 naming input_reference, got " + e + " " + JSON.stringify(e.error));
}
const after = [];
for await (const v of client.videos.list({ limit: 100 })) after.push(v.id);
if (after.length !== before.length) fail(`a refused request was queued (${before.length} -> ${after.length})`);
console.log(`openai SDK i2v: ${model} made ${video.id} from a ${image.length}-byte image (${bytes.length}-byte MP4); a corrupt image got 422 (input_reference), nothing queued`);
