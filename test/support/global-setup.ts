// Placeholder replaced by the registry harness: starts shared test registries once per run.
export default async function setup(): Promise<void> {}
