export { ContainerResolver } from './resolver.js';
export type { ContainerFacts, KeyIdentity, ResolverOptions } from './resolver.js';
export { DockerClient, DockerApiError } from './docker.js';
export type { DockerContainerInfo, DockerEvent } from './docker.js';
export {
  cgroupPathOfPid, containerIdFromCgroupPath, detectCgroupHierarchy, findCgroupPathByKey, keyOfCgroupPath,
} from './cgroups.js';
export type { CgroupHierarchy, CgroupContainerId } from './cgroups.js';
