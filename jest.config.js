// Tests are compiled by `tsc` first (npm test does both) and run as plain JS, so worker
// threads load the same compiled files the CLI uses.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  testTimeout: 60000,
};
