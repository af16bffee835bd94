package state

// KeyFederatedCredentials lists the names of the federated identity credentials
// entraclaw-migrate -federate put on the app, comma-separated and sorted (FIC names are
// URL-friendly: no commas). entraclaw-verify compares the app's FICs with it.
const KeyFederatedCredentials = "PROVISIONER_FEDERATED_CREDENTIALS"
