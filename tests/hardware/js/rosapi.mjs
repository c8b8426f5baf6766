// roslibjs's rosapi calls against `playworld twin serve`, as Foxglove's Rosbridge connection
// makes them, and one /joint_states message in cbor-raw (ROS 1 wire bytes, Foxglove's choice).
//   node rosapi.mjs PORT -> one JSON line with what it saw
import { Ros, Topic, Param } from "roslib";
// What Foxglove itself uses to read a ROS 1 rosbridge connection: the definition parser and
// the ROS 1 message reader, fed with topics_and_raw_types text and cbor-raw bytes.
import { parse } from "@foxglove/rosmsg";
import { MessageReader } from "@foxglove/rosmsg-serialization";

const ros = new Ros({ url: `ws://127.0.0.1:${process.argv[2]}` });
const fail = (why) => { console.log(JSON.stringify({ error: String(why) })); process.exit(1); };
setTimeout(() => fail("timed out"), 15000).unref();
ros.on("error", (e) => fail(`connection error: ${e?.message ?? e}`));
await new Promise((resolve) => ros.on("connection", resolve));

// ros[method](...args, resolve, reject) as a promise
const ask = (method, ...args) =>
  new Promise((resolve, reject) => ros[method](...args, resolve, (e) => reject(new Error(`${method}: ${e}`))));
const out = {};
try {
  const raw = await ask("getTopicsAndRawTypes");
  const i = raw.topics.indexOf("/joint_states");
  out.raw = { topics: raw.topics, type: raw.types[i], text: raw.typedefs_full_text[i] };
  out.topicType = await ask("getTopicType", "/joint_states");
  out.topics = await ask("getTopics");
  out.topicsForType = await ask("getTopicsForType", "sensor_msgs/JointState");
  out.services = await ask("getServices");
  out.serviceType = await ask("getServiceType", "/playworld/estop");
  out.servicesForType = await ask("getServicesForType", "std_srvs/Trigger");
  out.details = ros.decodeTypeDefs(await ask("getMessageDetails", "sensor_msgs/JointState"));
  out.request = await ask("getServiceRequestDetails", "std_srvs/SetBool");
  out.response = await ask("getServiceResponseDetails", "std_srvs/Trigger");
  out.nodes = await ask("getNodes");
  out.nodeDetails = await ask("getNodeDetails", "/playworld");
  out.actionServers = await ask("getActionServers");
  out.paramsBefore = await ask("getParams");
  const gain = new Param({ ros, name: "/playworld/gain" });
  await new Promise((resolve, reject) => gain.set({ kp: 2.5 }, resolve, reject));
  out.paramValue = await new Promise((resolve, reject) => gain.get(resolve, reject));
  out.paramsAfter = await ask("getParams");
  await new Promise((resolve, reject) => gain.delete(resolve, reject));
  out.paramsDeleted = await ask("getParams");
  const states = new Topic({ ros, name: "/joint_states", compression: "cbor-raw" });
  out.publishers = await new Promise((resolve, reject) => states.getPublishers(resolve, reject));
  const msg = await new Promise((resolve) => states.subscribe(resolve));
  states.unsubscribe();
  out.rawState = decodeJointState(msg.bytes);
  out.rawReceipt = msg.secs;
  // Foxglove's path: every definition parses; the cbor-raw messages decode with it
  const readers = Object.fromEntries(raw.types.map((type, k) =>
    [type, new MessageReader(parse(raw.typedefs_full_text[k], { ros2: false }))]));
  const state = readers["sensor_msgs/JointState"].readMessage(msg.bytes);
  out.foxgloveState = { name: state.name, position: Array.from(state.position), stamp: state.header.stamp };
  const images = new Topic({ ros, name: "/camera/front/image/compressed", compression: "cbor-raw" });
  const img = await new Promise((resolve) => images.subscribe(resolve));
  images.unsubscribe();
  const image = readers["sensor_msgs/CompressedImage"].readMessage(img.bytes);
  out.foxgloveImage = { format: image.format, head: Array.from(image.data.slice(0, 3)), size: image.data.length };
} catch (e) {
  fail(e.message);
}
console.log(JSON.stringify(out));
ros.close();
process.exit(0);

// sensor_msgs/JointState in ROS 1's wire format: little-endian, uint32 lengths before strings
// and variable-length arrays; Header = uint32 seq, time stamp (uint32 secs, nsecs), frame_id.
function decodeJointState(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u32 = () => { const v = view.getUint32(at, true); at += 4; return v; };
  const str = () => { const n = u32(); const s = Buffer.from(bytes.subarray(at, at + n)).toString(); at += n; return s; };
  const f64s = () => { const n = u32(); const v = []; for (let k = 0; k < n; k++, at += 8) v.push(view.getFloat64(at, true)); return v; };
  const seq = u32(), secs = u32(), nsecs = u32(), frame = str();
  const n = u32(); const name = []; for (let k = 0; k < n; k++) name.push(str());
  const position = f64s(), velocity = f64s(), effort = f64s();
  return { seq, secs, nsecs, frame, name, position, velocity, effort, left: bytes.byteLength - at };
}
