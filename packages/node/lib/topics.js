'use strict';
// Topics in the JavaScript layer: argument checks and the error classes of
// the native topic calls (Socket#subscribe, App#publish, ...).
const { native } = require('./native');
const { WebSocketMessage } = require('./message');
const errors = require('./errors');

const ENOTFOUND = -20;
const EINVAL = -1;
const MAX_TOPIC_LENGTH = 256;

function checkTopic(topic) {
  if (typeof topic !== 'string') throw new TypeError(`topic must be a string, not ${typeof topic}`);
  return topic;
}

/** The error of a failed topic call (a negative core code). */
function topicError(rc) {
  const message = rc === EINVAL ? `a topic is 1..${MAX_TOPIC_LENGTH} bytes of UTF-8`
    : native.errorMessage(rc);
  return errors.fromInfo({ code: native.errorName(rc), errno: rc, message });
}

/** A count from the native call, or throw its error (a code or an info object). */
function countOf(r) {
  if (typeof r === 'number') {
    if (r < 0) throw topicError(r);
    return r;
  }
  if (r.errno === EINVAL) throw topicError(EINVAL);
  throw errors.fromInfo(r);
}

/** server.publish / publishValue by the message's type. */
function publish(server, topic, message, exclude) {
  checkTopic(topic);
  if (message instanceof WebSocketMessage) message = message.data;
  if (typeof message === 'string' || message instanceof Uint8Array) {
    return countOf(server.publish(topic, message, exclude));
  }
  if (message instanceof ArrayBuffer) {
    return countOf(server.publish(topic, new Uint8Array(message), exclude));
  }
  return countOf(server.publishValue(topic, message, exclude));
}

module.exports = { ENOTFOUND, checkTopic, topicError, countOf, publish };
