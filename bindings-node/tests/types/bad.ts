// Must NOT compile: proves the type check can fail (tests/types.test.js).
import { encode } from '../..'
encode({ headers: {}, body: { openc2: { request: { action: 'deny', target: {} } } } }, { encoding: 'xml' })
