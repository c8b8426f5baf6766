// Two roslibjs clients through the playworld rosbridge relay: one publishes, the other receives
// (JSON, and CBOR with typed arrays and byte strings).   node relay.mjs PORT -> one JSON line
import { Ros, Service, Topic } from "roslib";

const url = `ws://127.0.0.1:${process.argv[2]}`;
const fail = (why) => { console.log(JSON.stringify({ error: String(why) })); process.exit(1); };
setTimeout(() => fail("timed out"), 15000).unref();
const connect = async () => {
  const ros = new Ros({ url });
  ros.on("error", (e) => fail(`connection error: ${e?.message ?? e}`));
  await new Promise((resolve) => ros.on("connection", resolve));
  return ros;
};
const a = await connect(); // publisher
const b = await connect(); // subscriber

const got = { chat: [], states: [], images: [] };
const topic = (ros, name, messageType, compression = "none") =>
  new Topic({ ros, name, messageType, compression });
topic(b, "/relay/chat", "std_msgs/String").subscribe((m) => got.chat.push(m.data));
// no leading slash: resolved in the root namespace, and echoed back as spelled
topic(b, "relay/state", "sensor_msgs/JointState", "cbor").subscribe((m) => got.states.push(m));
topic(b, "/relay/image", "sensor_msgs/CompressedImage", "cbor").subscribe((m) => got.images.push(m));
// b's subscribes are processed before this answer comes back on the same socket
await new Promise((resolve, reject) => b.getTopics(resolve, reject));

const chat = topic(a, "/relay/chat", "std_msgs/String");
const state = topic(a, "/relay/state", "sensor_msgs/JointState");
const image = topic(a, "/relay/image", "sensor_msgs/CompressedImage");
for (let i = 0; i < 5; i++) chat.publish({ data: `js ${i}` });
for (let i = 0; i < 3; i++) {
  state.publish({ name: ["j1", "j2"], position: [i + 0.5, -i - 0.25] });
}
const jpeg = Buffer.from([255, 216, 0, 1, 2, 3, 254, 255, 217]);
image.publish({ format: "jpeg", data: jpeg.toString("base64") });

while (got.chat.length < 5 || got.states.length < 3 || got.images.length < 1) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
// a service offered by one client (named without a leading slash), called by the other
const double = new Service({ ros: a, name: "relay/double", serviceType: "playworld_test/Double" });
await double.advertise((request, response) => { response.y = request.x * 2; return true; });
await new Promise((resolve, reject) => a.getServices(resolve, reject)); // the advertise landed
const caller = new Service({ ros: b, name: "/relay/double", serviceType: "playworld_test/Double" });
const doubled = await new Promise((resolve, reject) => caller.callService({ x: 21 }, (r) => resolve(r.y), reject));

const s = got.states[0];
console.log(JSON.stringify({
  chat: got.chat,
  doubled,
  positions: got.states.map((m) => Array.from(m.position)),
  positionClass: s.position.constructor.name,
  names: s.name,
  stamp: s.header.stamp,
  image: {
    dataClass: got.images[0].data.constructor.name,
    bytes: Array.from(got.images[0].data),
    format: got.images[0].format,
  },
}));
a.close();
b.close();
process.exit(0);
