package io.apicurio.common.apps.config;

import static java.lang.annotation.RetentionPolicy.RUNTIME;

import jakarta.enterprise.util.Nonbinding;
import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.Target;

/**
 * Documentation of a configuration property, with the member types Apicurio Registry 3.0.9's classes were
 * compiled against.
 *
 * <p>The only served {@code apicurio-registry-config-definitions} (3.0.6) declares {@code category} as a
 * {@code String}; 3.0.9 made it a {@link ConfigPropertyCategory}. Quarkus generates an implementation of this
 * annotation from its declaration and fills it with the values found on the application's classes, so with
 * the 3.0.6 declaration the generated bean constructors pass an enum where a string is expected and fail
 * verification at start-up. This declaration (the application's own classes come first on the class path)
 * restores the 3.0.9 member types; the members only document, none of them takes part in injection.
 */
@Documented
@Retention(RUNTIME)
@Target({ElementType.FIELD, ElementType.METHOD})
public @interface Info {
    /** The documentation section of the property. */
    @Nonbinding
    ConfigPropertyCategory category();

    /** What the property does. */
    @Nonbinding
    String description() default "";

    /** The first version that has the property. */
    @Nonbinding
    String availableSince() default "";

    /** The first Registry version that has the property. */
    @Nonbinding
    String registryAvailableSince() default "";

    /** The first Studio version that has the property. */
    @Nonbinding
    String studioAvailableSince() default "";

    /** Related properties. */
    @Nonbinding
    String[] seeAlso() default {};

    /** Properties to set before this one. */
    @Nonbinding
    String[] dependsOn() default {};
}
