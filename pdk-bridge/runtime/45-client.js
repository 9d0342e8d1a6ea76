// In-isolate runtime: pdk.client. The consumer engineer's branch holds only the consumer half
// (44-client-consumer.js); the namespaces engineer's file adds getIp, getPort and the rest.
const pdkClient = $freeze({ ...(typeof pdkClientConsumer === 'undefined' ? {} : pdkClientConsumer) });
