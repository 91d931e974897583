const fnhub = require('fnhub');
exports.greet = fnhub.api({ title: 'Greet' }, async ({ name = 'world' }) => `hello ${name} from node ${process.versions.node}`);
