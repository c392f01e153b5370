/**
 * Media types of the OCI image spec and of Docker's image manifest v2,
 * schema 2, which registries and archives still use side by side.
 *
 * @see https://github.com/opencontainers/image-spec/blob/main/media-types.md
 * @see https://distribution.github.io/distribution/spec/manifest-v2-2/
 */

/** OCI image manifest. */
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

/** OCI image index (multi-platform image). */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

/** OCI image configuration. */
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'

/** OCI layer, an uncompressed tar. */
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'

/** OCI layer, a gzip-compressed tar. */
export const OCI_LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'

/** OCI layer, a zstd-compressed tar. */
export const OCI_LAYER_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'

/** Docker image manifest v2, schema 2. */
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'

/** Docker manifest list, the Docker counterpart of the OCI image index. */
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'

/** Docker image manifest v2, schema 1, which kilomesh does not accept. */
export const DOCKER_MANIFEST_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json'

/** Signed Docker schema 1 manifest, which kilomesh does not accept either. */
export const DOCKER_MANIFEST_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws'

/** Docker image configuration. */
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'

/** Docker layer, a gzip-compressed tar. */
export const DOCKER_LAYER_TAR_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'

/** Docker layer that registries may refuse to distribute (Windows base layers). */
export const DOCKER_FOREIGN_LAYER_TAR_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'

/** Annotation that names an image inside an OCI image layout's index.json. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name'

const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST])
const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST])

/** Returns true for the media type of a single-platform image manifest (OCI or Docker). */
export function isManifestMediaType (mediaType: string): boolean {
  return MANIFEST_MEDIA_TYPES.has(mediaType)
}

/** Returns true for the media type of a multi-platform index (OCI image index or Docker manifest list). */
export function isIndexMediaType (mediaType: string): boolean {
  return INDEX_MEDIA_TYPES.has(mediaType)
}

/**
 * Strips parameters and case from a media type as HTTP sends it, so
 * `application/vnd.oci.image.manifest.v1+json; charset=utf-8` compares equal
 * to the bare type.
 */
export function normalizeMediaType (value: string): string {
  return value.split(';', 1)[0]?.trim().toLowerCase() ?? ''
}
