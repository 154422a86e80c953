package io.apicurio.common.apps.config;

/**
 * The category of a documented configuration property, as named in {@code @Info(category = ...)} throughout
 * Apicurio Registry 3.0.9's application classes.
 *
 * <p>Apicurio publishes this enum in {@code apicurio-registry-config-definitions:3.0.9}, which Maven Central
 * does not serve here; the newest served version of that module (3.0.6) predates the enum. The application
 * only ever uses it as an annotation value, and Quarkus's generated bean metadata loads it at start-up, so
 * without it the registry fails with {@code NoClassDefFoundError}. The constants are the ones the 3.0.9
 * classes reference (plus {@code CATEGORY_HIDDEN}, used for undocumented properties); nothing reads their
 * values in a running registry.
 */
public enum ConfigPropertyCategory {
    CATEGORY_API("api"),
    CATEGORY_AUTH("auth"),
    CATEGORY_CACHE("cache"),
    CATEGORY_CCOMPAT("ccompat"),
    CATEGORY_DOWNLOAD("download"),
    CATEGORY_GITOPS("gitops"),
    CATEGORY_HEALTH("health"),
    CATEGORY_HIDDEN("hidden"),
    CATEGORY_IMPORT("import"),
    CATEGORY_LIMITS("limits"),
    CATEGORY_REDIRECTS("redirects"),
    CATEGORY_REST("rest"),
    CATEGORY_SEMVER("semver"),
    CATEGORY_STORAGE("storage"),
    CATEGORY_SYSTEM("system"),
    CATEGORY_UI("ui");

    private final String rawValue;

    ConfigPropertyCategory(String rawValue) {
        this.rawValue = rawValue;
    }

    /** The category's name in the documentation. */
    public String getRawValue() {
        return rawValue;
    }
}
