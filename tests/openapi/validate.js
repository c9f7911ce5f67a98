// validate.js FILE - checks an OpenAPI document against the OpenAPI 3 specification (its JSON
// schema and the rules beyond it: unique operationIds, resolvable $refs, path parameters).
// Prints "valid" and exits 0, or prints the errors and exits 1.
'use strict';
const SwaggerParser = require('@apidevtools/swagger-parser');

SwaggerParser.validate(process.argv[2])
    .then((api) => {
        console.log('valid ' + api.openapi + ' ' + Object.keys(api.paths).length + ' paths');
    })
    .catch((err) => {
        console.error(err.message);
        process.exit(1);
    });
