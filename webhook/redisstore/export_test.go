package redisstore

// Millis exposes millis to the tests of package redisstore_test.
var Millis = millis
