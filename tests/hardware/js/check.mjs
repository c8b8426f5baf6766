// roslibjs (npm roslib) against the playworld rosbridge server, under Node.js.
//   node check.mjs PORT   -> one JSON line with what it saw
import { Ros, Topic, Service } from "roslib";

const port = process.argv[2];
const ros = new Ros({ url: `ws://127.0.0.1:${port}` });
const fail = (why) => { console.log(JSON.stringify({ error: String(why) })); process.exit(1); };
setTimeout(() => fail("timed out"), 15000).unref();
ros.on("error", (e) => fail(`connection error: ${e?.message ?? e}`));

await new Promise((resolve) => ros.on("connection", resolve));
const received = [];
const listener = new Topic({ ros, name: "/echo_out", messageType: "std_msgs/String" });
const done = new Promise((resolve) => {
  listener.subscribe((m) => { received.push(m.data); if (received.length === 5) resolve(); });
});
const talker = new Topic({ ros, name: "/echo_in", messageType: "std_msgs/String" });
for (let i = 0; i < 5; i++) talker.publish({ data: `js ${i}` });
await done;
const add = new Service({ ros, name: "/add_two_ints", serviceType: "rospy_tutorials/AddTwoInts" });
const sum = await new Promise((resolve, reject) => add.callService({ a: 20, b: 22 }, (r) => resolve(r.sum), reject));
listener.unsubscribe();
console.log(JSON.stringify({ received, sum }));
ros.close();
process.exit(0);
